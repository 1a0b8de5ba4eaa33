/** Command-line options of `npm run bench`, and the sizes of each workload in full and quick runs. */
import { availableParallelism } from 'node:os'

export interface Sizes {
  fillDrainItems: number
  mixedMs: number
  mixedBacklogCap: number
  durableMs: number
  blockingMs: number
  blockingRatePerSec: number
  largeItems: number
  tinyItems: number
  replayItems: number
  replayValueSize: number
}

export const FULL: Sizes = {
  fillDrainItems: 200_000,
  mixedMs: 10_000,
  mixedBacklogCap: 20_000,
  durableMs: 10_000,
  blockingMs: 10_000,
  blockingRatePerSec: 4_000,
  largeItems: 5_000,
  tinyItems: 200_000,
  replayItems: 5_000_000,
  replayValueSize: 1024,
}

export const QUICK: Sizes = {
  fillDrainItems: 6_000,
  mixedMs: 1_500,
  mixedBacklogCap: 2_000,
  durableMs: 1_500,
  blockingMs: 1_500,
  blockingRatePerSec: 1_000,
  largeItems: 200,
  tinyItems: 6_000,
  replayItems: 30_000,
  replayValueSize: 1024,
}

export interface BenchOptions {
  quick: boolean
  /** Peer names or families (`ours`, `redis`, `beanstalkd`, `memcached`); null = all. */
  only: string[] | null
  /** Workload names; null = all. */
  workloads: string[] | null
  /** Load-generator threads. */
  threads: number
  /** Write bench/results/<stamp>.{json,md}. */
  write: boolean
  /** Run our server under `node --cpu-prof` for the mixed workload and summarise the profile. */
  cpuProf: boolean
  sizes: Sizes
}

const USAGE = `usage: npm run bench -- [--quick] [--only PEER[,PEER...]] [--workloads NAME[,NAME...]]
                        [--threads N] [--no-write] [--cpu-prof] [--replay-items N] [--replay-size BYTES]
peers: memcached redis-everysec redis-always beanstalkd beanstalkd-f0 ours-never ours-always
       (families: redis, beanstalkd, ours)
workloads: fill-drain fill-drain-binary mixed mixed-half durable-fill blocking large tiny replay`

export function parseOptions(argv: string[]): BenchOptions {
  const options: BenchOptions = {
    quick: false,
    only: null,
    workloads: null,
    threads: Math.max(2, Math.min(4, availableParallelism())),
    write: true,
    cpuProf: false,
    sizes: FULL,
  }
  const overrides: Partial<Sizes> = {}
  const list = (value: string | undefined, flag: string): string[] => {
    if (!value || value.startsWith('--')) throw new Error(`${flag} needs a value\n${USAGE}`)
    return value.split(',').map((s) => s.trim()).filter((s) => s.length > 0)
  }
  const positive = (value: string | undefined, flag: string): number => {
    const n = Number(value)
    if (!Number.isInteger(n) || n <= 0) throw new Error(`${flag} needs a positive integer\n${USAGE}`)
    return n
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    switch (arg) {
      case '--quick':
        options.quick = true
        break
      case '--only': {
        const names = list(argv[++i], arg)
        // Also accept `--only ours redis` (space-separated).
        while (i + 1 < argv.length && !argv[i + 1]!.startsWith('--')) names.push(...list(argv[++i], arg))
        options.only = [...(options.only ?? []), ...names]
        break
      }
      case '--workloads':
        options.workloads = list(argv[++i], arg)
        break
      case '--threads':
        options.threads = positive(argv[++i], arg)
        break
      case '--no-write':
        options.write = false
        break
      case '--cpu-prof':
        options.cpuProf = true
        break
      case '--replay-items':
        overrides.replayItems = positive(argv[++i], arg)
        break
      case '--replay-size':
        overrides.replayValueSize = positive(argv[++i], arg)
        break
      case '--help':
      case '-h':
        console.log(USAGE)
        process.exit(0)
        break
      default:
        throw new Error(`unknown option ${arg}\n${USAGE}`)
    }
  }
  options.sizes = { ...(options.quick ? QUICK : FULL), ...overrides }
  return options
}
