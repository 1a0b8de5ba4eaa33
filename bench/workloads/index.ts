/** Every workload, in the order a run goes through them. */
import { BLOCKING } from './blocking.js'
import type { Workload } from './common.js'
import { DURABLE_FILL } from './durableFill.js'
import { FILL_DRAIN, FILL_DRAIN_BINARY, LARGE, TINY } from './fillDrain.js'
import { MIXED } from './mixed.js'
import { MIXED_HALF } from './mixedHalf.js'
import { REPLAY } from './replay.js'

export const WORKLOADS: Workload[] = [FILL_DRAIN, FILL_DRAIN_BINARY, MIXED, MIXED_HALF, DURABLE_FILL, BLOCKING, LARGE, TINY, REPLAY]
