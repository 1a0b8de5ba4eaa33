/** The limits a codec enforces while parsing (set from config.ts; parsers import only this). */
export interface ProtocolLimits {
  /** Largest item payload (memcached item_size_max). */
  maxItemSize: number
  /** Longest key, options included. */
  maxKeyLength: number
  /** Longest text command line without its data block. */
  maxLineLength: number
}
