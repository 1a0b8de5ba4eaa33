/**
 * Shared by the examples: which servers to use. `--servers host:port,host:port` or the
 * STARLING_SERVERS environment variable; default 127.0.0.1:22122.
 */
export function serversFrom(flag: string | undefined): string[] {
  const text = flag ?? process.env.STARLING_SERVERS ?? '127.0.0.1:22122'
  return text.split(',').map((s) => s.trim()).filter((s) => s !== '')
}
