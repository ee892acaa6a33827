/** `runner.os` as GitHub names it: `Linux`, `macOS` or `Windows`. */
export function runnerOs(): string {
  if (process.platform === 'darwin') return 'macOS';
  if (process.platform === 'win32') return 'Windows';
  return 'Linux';
}

/** `runner.arch` as GitHub names it: `X86`, `X64`, `ARM` or `ARM64` (others upper-cased). */
export function runnerArch(): string {
  const names: Record<string, string> = { ia32: 'X86', x64: 'X64', arm: 'ARM', arm64: 'ARM64' };
  return names[process.arch] ?? process.arch.toUpperCase();
}
