/**
 * beanstalkd protocol client: use, watch, ignore, put, reserve-with-timeout, delete.
 */
import { Connection, INCOMPLETE, lineEnd, ReplyError, type Pending } from './connection.js'

type Kind = 'line' | 'reserve'

export interface Job {
  id: string
  body: Buffer
}

export class BeanstalkClient extends Connection<Kind> {
  static async connect(host: string, port: number): Promise<BeanstalkClient> {
    return new BeanstalkClient(await Connection.open(host, port))
  }

  private async expect(command: string, prefix: string): Promise<string> {
    const line = await this.request<string>('line', command)
    if (!line.startsWith(prefix)) throw new ReplyError(`${command.trim()}: ${line}`)
    return line
  }

  use(tube: string): Promise<string> {
    return this.expect(`use ${tube}\r\n`, 'USING')
  }
  watch(tube: string): Promise<string> {
    return this.expect(`watch ${tube}\r\n`, 'WATCHING')
  }
  ignore(tube: string): Promise<string> {
    return this.expect(`ignore ${tube}\r\n`, 'WATCHING')
  }

  /** Resolves with the job id once INSERTED. */
  async put(body: Buffer, priority = 0, ttrSeconds = 600): Promise<string> {
    const line = await this.request<string>('line', [`put ${priority} 0 ${ttrSeconds} ${body.length}\r\n`, body, '\r\n'])
    if (!line.startsWith('INSERTED ')) throw new ReplyError(`put: ${line}`)
    return line.slice(9)
  }

  /** A job, or null on TIMED_OUT (a timeout of 0 is a non-blocking poll). */
  reserve(timeoutSeconds: number): Promise<Job | null> {
    return this.request('reserve', `reserve-with-timeout ${timeoutSeconds}\r\n`)
  }

  async delete(id: string): Promise<void> {
    await this.expect(`delete ${id}\r\n`, 'DELETED')
  }

  protected parse(p: Pending<Kind>, buf: Buffer, off: number): number {
    const eol = lineEnd(buf, off)
    if (eol < 0) return INCOMPLETE
    const line = buf.toString('latin1', off, eol)
    if (p.kind === 'line') {
      this.settle(p, line)
      return eol + 2
    }
    if (line.startsWith('RESERVED ')) {
      const [, id, bytesText] = line.split(' ')
      const bytes = Number(bytesText)
      const end = eol + 2 + bytes
      if (buf.length < end + 2) return INCOMPLETE
      this.settle(p, { id: id!, body: buf.subarray(eol + 2, end) })
      return end + 2
    }
    if (line === 'TIMED_OUT' || line === 'DEADLINE_SOON') {
      this.settle(p, null)
      return eol + 2
    }
    this.settleError(p, new ReplyError(`reserve: ${line}`))
    return eol + 2
  }
}
