// ringlog: a low-latency event log. Include this for everything in the core.
#pragma once

#include "ringlog/consumer.h"
#include "ringlog/control.h"
#include "ringlog/crc32c.h"
#include "ringlog/event.h"
#include "ringlog/pipeline.h"
#include "ringlog/ring.h"
#include "ringlog/storage.h"
