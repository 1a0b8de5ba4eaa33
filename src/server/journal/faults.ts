/**
 * Old name of fileOps.ts, kept only so that journal/index.ts (being reworked into a plain barrel,
 * issue 14 item 6) still builds; import from './fileOps.js'. Delete once index.ts does.
 */
export * from './fileOps.js'
