# Upshift: the two quick-start commands and their helpers.
# Each target installs what it needs: librdkafka-dev (and kcat for the benchmark) come from apt-get
# when pkg-config cannot find them, as does Chromium for the report test; the schema checks'
# Python packages come from PyPI.

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
SWIFT_TEST_FLAGS ?=

.PHONY: demo test broker bench-kafka bench-engine bench-stream bench-hot-paths deps python-deps browser kcat

## The demo: an embedded broker, the example workflows and a generated population, decisions printed live.
demo: deps
	swift run upshift dev $(ARGS)

## Run every test suite (Swift Testing) against the embedded Kafka broker.
test: deps python-deps browser
	swift build --build-tests
	swift test --skip-build $(SWIFT_TEST_FLAGS)

## Run the embedded broker in the foreground: make broker ARGS="--topic events:8"
broker: deps
	swift run upshift broker $(ARGS)

## Produce and consume 1,000,000 records of 100 bytes with the Swift layer and with kcat.
bench-kafka: deps kcat
	swift build -c release --product KafkaThroughput
	.build/release/KafkaThroughput

## The decision engine alone on one core: 1,000,000 generated events over 100,000 customers.
bench-engine:
	swift build -c release --product EngineThroughput
	.build/release/EngineThroughput

## The processor end to end through the embedded broker: exactly-once on and off against the
## broker's ceiling, and decision latency at 20,000 events/s.
bench-stream: deps
	swift build -c release --product StreamThroughput
	.build/release/StreamThroughput

## The hot paths one at a time (decode, apply, encode, write, produce), per operation with mallocs,
## with ordo-one/benchmark.
bench-hot-paths: deps
	swift package benchmark --target HotPaths

deps:
	@pkg-config --exists rdkafka || { \
		echo "librdkafka-dev not found: installing it with apt-get"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq librdkafka-dev pkg-config; }

## jsonschema (with referencing), PyYAML and prometheus-client, for schemas/validate.py.
python-deps:
	@python3 -c "import jsonschema, referencing, yaml, prometheus_client" 2>/dev/null || { \
		echo "installing the schema checks' Python packages with pip"; \
		python3 -m pip install --quiet --disable-pip-version-check jsonschema pyyaml prometheus-client; }

## Chromium, headless, for the test that renders the HTML report.
browser:
	@command -v chromium >/dev/null || { \
		echo "chromium not found: installing it with apt-get"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }

kcat:
	@command -v kcat >/dev/null || { \
		echo "kcat not found: installing it with apt-get"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq kcat; }
