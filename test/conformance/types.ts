/** What a conformance suite returns; see test/conformance/run.ts. */
export interface SuiteResult {
  passed: number;
  failed: number;
  skipped?: number;
}
