/// The report as one self-contained HTML page: the terminal report's numbers in tables, and
/// charts drawn in SVG by an inline script from data embedded in the page (conversion over time
/// by arm against the holdout, a funnel per step, guardrail rates). No network, no library.
extension ExperimentReport {
    public var html: String {
        var body = ""
        for (index, result) in workflows.enumerated() {
            body += "<section data-workflow=\"\(escape(result.workflow))\">\n<h2>\(escape(result.workflow))</h2>\n"
            body += "<table class=\"arms\"><tr><th>arm</th><th>eligible</th><th>exposed</th><th>revenue/customer</th></tr>\n"
            for arm in result.arms {
                body += "<tr data-arm=\"\(escape(arm.name))\"><td>\(escape(arm.name))</td><td>\(arm.assigned)</td>"
                    + "<td>\(arm.name == "holdout" ? "-" : String(arm.exposed))</td><td>\(Self.money(arm.revenuePerCustomer))</td></tr>\n"
            }
            body += "</table>\n"
            for conversion in result.conversions {
                body += "<h3>conversion \(escape(conversion))</h3>\n<table class=\"conversion\" data-conversion=\"\(escape(conversion))\">"
                body += "<tr><th>arm</th><th>converted</th><th>rate</th><th>lift against the holdout</th><th>median time to convert</th></tr>\n"
                for arm in result.arms {
                    let lift = result.lift(of: arm, for: conversion).map(Self.describe) ?? ""
                    let median = arm.medianSecondsToConvert(conversion).map(Self.days) ?? ""
                    body += "<tr data-arm=\"\(escape(arm.name))\"><td>\(escape(arm.name))</td>"
                        + "<td>\(arm.converted[conversion, default: 0])/\(arm.assigned)</td><td class=\"rate\">\(Self.percent(arm.rate(conversion)))</td>"
                        + "<td class=\"lift\">\(escape(lift))</td><td>\(median)</td></tr>\n"
                }
                body += "</table>\n"
            }
            if !result.guardrails.isEmpty {
                body += "<h3>guardrails</h3>\n<table class=\"guardrails\"><tr><th>guardrail</th>"
                    + result.arms.map { "<th>\(escape($0.name))</th>" }.joined() + "</tr>\n"
                for guardrail in result.guardrails {
                    body += "<tr data-guardrail=\"\(escape(guardrail))\"><td>\(escape(guardrail))</td>"
                        + result.arms.map { "<td>\(Self.percent($0.guardrailRate(guardrail)))</td>" }.joined() + "</tr>\n"
                }
                body += "</table>\n"
            }
            for chart in ["conversion-over-time", "funnel", "guardrails"] {
                body += "<figure><figcaption>\(chart.replacingOccurrences(of: "-", with: " "))</figcaption>"
                    + "<svg class=\"chart\" data-chart=\"\(chart)\" data-index=\"\(index)\" width=\"720\" height=\"240\"></svg></figure>\n"
            }
            body += "</section>\n"
        }
        var writer = JSONWriter()
        writer.write(.array(workflows.map(chartData)))
        let data = writer.text.replacingOccurrences(of: "<", with: "\\u003c")
        return Self.page.replacingOccurrences(of: "{{body}}", with: body).replacingOccurrences(of: "{{data}}", with: data)
    }

    /// What the charts draw, computed here so that the script only lays it out.
    private func chartData(_ result: WorkflowResult) -> JSONValue {
        let primary = result.conversions.first
        let lastDay = result.arms.flatMap { $0.conversionsByDay.values.flatMap(\.keys) }.max() ?? 0
        var series: [JSONValue] = []
        for arm in result.arms {
            var cumulative = 0
            var points: [JSONValue] = []
            for day in 0...lastDay {
                cumulative += primary.flatMap { arm.conversionsByDay[$0]?[day] } ?? 0
                points.append(.number(arm.assigned == 0 ? 0 : Double(cumulative) / Double(arm.assigned)))
            }
            series.append(.object(["arm": .string(arm.name), "rates": .array(points)]))
        }
        let funnel: [JSONValue] = result.funnel.map { step in
            .object(["step": .string(step.step), "customers": .object(JSONObject(step.customers.sorted { $0.key < $1.key }.map { ($0.key, .number(Double($0.value))) }))])
        }
        let guardrails: [JSONValue] = result.guardrails.map { guardrail in
            .object(["guardrail": .string(guardrail), "rates": .object(JSONObject(result.arms.map { ($0.name, .number($0.guardrailRate(guardrail))) }))])
        }
        return .object([
            "workflow": .string(result.workflow), "conversion": primary.map(JSONValue.string) ?? .null,
            "arms": .array(result.arms.map { .string($0.name) }), "overTime": .array(series), "funnel": .array(funnel),
            "guardrails": .array(guardrails),
        ])
    }

    private func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    private static let page = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>Upshift experiment report</title>
        <style>
        body { font: 14px system-ui, sans-serif; margin: 2em; color: #222; }
        table { border-collapse: collapse; margin: .5em 0 1em; }
        th, td { border-bottom: 1px solid #ddd; padding: .25em .75em; text-align: right; }
        th:first-child, td:first-child { text-align: left; }
        figure { margin: 1em 0; } figcaption { font-weight: 600; }
        svg text { font: 11px system-ui, sans-serif; fill: #444; }
        </style></head>
        <body data-errors="0" data-charts="0">
        <h1>Upshift experiment report</h1>
        {{body}}
        <script type="application/json" id="report-data">{{data}}</script>
        <script>
        window.addEventListener("error", function () {
          document.body.dataset.errors = String(Number(document.body.dataset.errors) + 1);
        });
        (function () {
          var colors = ["#888", "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"];
          var data = JSON.parse(document.getElementById("report-data").textContent);
          var ns = "http://www.w3.org/2000/svg";
          function el(svg, name, attributes, text) {
            var node = document.createElementNS(ns, name);
            for (var key in attributes) node.setAttribute(key, attributes[key]);
            if (text !== undefined) node.textContent = text;
            svg.appendChild(node);
            return node;
          }
          function percent(value) { return (value * 100).toFixed(2) + "%"; }
          function lines(svg, workflow) {
            var days = workflow.overTime.length ? workflow.overTime[0].rates.length : 0;
            var top = Math.max(0.0001, Math.max.apply(null, workflow.overTime.map(function (s) { return Math.max.apply(null, s.rates.concat([0])); })));
            workflow.overTime.forEach(function (series, index) {
              var points = series.rates.map(function (rate, day) {
                return (40 + 560 * day / Math.max(1, days - 1)).toFixed(1) + "," + (210 - 190 * rate / top).toFixed(1);
              }).join(" ");
              el(svg, "polyline", { points: points, fill: "none", stroke: colors[index % colors.length], "stroke-width": 2, "data-arm": series.arm });
              el(svg, "text", { x: 610, y: 20 + 16 * index }, series.arm + " " + percent(series.rates[series.rates.length - 1] || 0));
            });
            el(svg, "text", { x: 40, y: 230 }, "day 0");
            el(svg, "text", { x: 560, y: 230 }, "day " + Math.max(0, days - 1));
          }
          function bars(svg, groups, arms, palette) {
            var top = 0.0001;
            groups.forEach(function (group) { arms.forEach(function (arm) { top = Math.max(top, group.values[arm] || 0); }); });
            var width = 560 / Math.max(1, groups.length);
            groups.forEach(function (group, g) {
              arms.forEach(function (arm, a) {
                var value = group.values[arm] || 0;
                var height = 180 * value / top;
                el(svg, "rect", { x: 40 + g * width + a * width / (arms.length + 1), y: 200 - height, width: width / (arms.length + 1) - 2,
                  height: height, fill: colors[palette.indexOf(arm) % colors.length], "data-arm": arm, "data-value": value });
              });
              el(svg, "text", { x: 40 + g * width, y: 220 }, group.label);
            });
            arms.forEach(function (arm, a) { el(svg, "text", { x: 610, y: 20 + 16 * a, style: "fill: " + colors[palette.indexOf(arm) % colors.length] }, arm); });
          }
          var drawn = 0;
          document.querySelectorAll("svg.chart").forEach(function (svg) {
            var workflow = data[Number(svg.dataset.index)];
            if (svg.dataset.chart === "conversion-over-time") {
              lines(svg, workflow);
            } else if (svg.dataset.chart === "funnel") {
              bars(svg, workflow.funnel.map(function (step) { return { label: step.step, values: step.customers }; }),
                workflow.arms.filter(function (arm) { return arm !== "holdout"; }), workflow.arms);
            } else {
              bars(svg, workflow.guardrails.map(function (g) { return { label: g.guardrail, values: g.rates }; }), workflow.arms, workflow.arms);
            }
            drawn += 1;
          });
          document.body.dataset.charts = String(drawn);
        })();
        </script>
        </body></html>

        """
}
