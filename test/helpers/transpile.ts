/**
 * Crash tests run a child process that must die at a failpoint. Running it through tap's
 * TypeScript loader costs seconds of CPU per child; instead the journal sources and the child are
 * transpiled once (TypeScript's transpileModule: no type check, ~100 ms) into a temp directory and
 * the children run as plain JavaScript.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

/** Transpile the journal, errors.ts and the test fixtures; returns the path of `fixture` as JS. */
export function transpileForChild(t: { teardown(fn: () => void): void }, fixture: string): string {
  const out = mkdtempSync(join(tmpdir(), 'starling-child-'))
  t.teardown(() => rmSync(out, { recursive: true, force: true }))
  writeFileSync(join(out, 'package.json'), '{"type":"module"}')
  const files = [
    ...readdirSync(join(ROOT, 'src/server/journal')).map((f) => join(ROOT, 'src/server/journal', f)),
    join(ROOT, 'src/server/errors.ts'),
    ...readdirSync(join(ROOT, 'test/journal/fixtures')).map((f) => join(ROOT, 'test/journal/fixtures', f)),
  ].filter((f) => f.endsWith('.ts'))
  for (const file of files) {
    const js = ts.transpileModule(readFileSync(file, 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
      fileName: file,
    }).outputText
    const dest = join(out, relative(ROOT, file)).replace(/\.ts$/, '.js')
    mkdirSync(dirname(dest), { recursive: true })
    writeFileSync(dest, js)
  }
  return join(out, 'test/journal/fixtures', fixture.replace(/\.ts$/, '.js'))
}
