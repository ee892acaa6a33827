const PREFIX = '::add-mask::';
/** Longest partial line kept between chunks; a longer line cannot be an add-mask command we honour. */
const MAX_CARRY = 64 * 1024;

/**
 * Returns a chunk consumer that finds `::add-mask::VALUE` lines in a step's
 * stdout (also when a line is split across chunks) and calls `onMask(VALUE)`.
 */
export function createMaskScanner(onMask: (value: string) => void): (chunk: Uint8Array) => void {
  const decoder = new TextDecoder();
  let carry = '';
  return (chunk) => {
    const text = carry + decoder.decode(chunk, { stream: true });
    const lines = text.split('\n');
    carry = lines.pop() ?? '';
    if (carry.length > MAX_CARRY) carry = '';
    for (const raw of lines) {
      const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
      const at = line.indexOf(PREFIX);
      if (at >= 0 && line.slice(0, at).trim() === '') {
        const value = line.slice(at + PREFIX.length).trim();
        if (value !== '') onMask(value);
      }
    }
  };
}
