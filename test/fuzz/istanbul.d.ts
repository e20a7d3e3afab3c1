/** The part of istanbul-lib-instrument's API the fuzz build uses (the package ships no types). */
declare module 'istanbul-lib-instrument' {
  export interface Instrumenter {
    instrumentSync(code: string, filename: string): string;
  }
  export function createInstrumenter(options: { esModules?: boolean; compact?: boolean; produceSourceMap?: boolean; coverageVariable?: string }): Instrumenter;
}
