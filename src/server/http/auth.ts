/**
 * HTTP Basic against `auth.users` (the same users as SASL PLAIN). Passwords are compared in
 * constant time by `passwordMatches`; an unknown user costs a comparison too, so that the answer
 * takes about as long as for a known one. A scrypt hash costs milliseconds, so a header already
 * verified is remembered (a few, bounded) to keep keep-alive clients cheap.
 */
import { createHash } from 'node:crypto'
import type { AuthConfig } from '../config.js'
import { passwordMatches } from '../dispatcher.js'

/** Verified Authorization headers kept (by SHA-256, never the password itself). */
const VERIFIED_CACHE_SIZE = 256

export class BasicAuth {
  private readonly verified = new Map<string, string>()

  constructor(private readonly auth: AuthConfig | null) {}

  get required(): boolean {
    return this.auth !== null
  }

  /**
   * The user of a request, to `done`: `''` when auth is off, the user name when the credentials
   * match, null otherwise (the caller answers 401). A scrypt hash is checked off the event loop.
   */
  userOf(header: string | undefined, done: (user: string | null) => void): void {
    const auth = this.auth
    if (!auth) return done('')
    if (!header || !/^basic /i.test(header)) return done(null)
    const digest = createHash('sha256').update(header).digest('base64')
    const known = this.verified.get(digest)
    if (known !== undefined) return done(known)
    const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8')
    const colon = decoded.indexOf(':')
    if (colon < 0) return done(null)
    const user = decoded.slice(0, colon)
    const password = decoded.slice(colon + 1)
    const stored = Object.prototype.hasOwnProperty.call(auth.users, user) ? auth.users[user]! : undefined
    // An unknown user costs the same work as a known one; the result is then ignored.
    passwordMatches(stored ?? password, password, (ok) => {
      if (!ok || stored === undefined) return done(null)
      if (this.verified.size >= VERIFIED_CACHE_SIZE) this.verified.delete(this.verified.keys().next().value!)
      this.verified.set(digest, user)
      done(user)
    })
  }
}
