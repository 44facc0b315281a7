#ifndef UPSHIFT_CRDKAFKA_SHIM_H
#define UPSHIFT_CRDKAFKA_SHIM_H

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#endif
