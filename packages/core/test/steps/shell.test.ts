import { scriptExtension, shellArgv, shellTemplate, splitCommandLine } from '@pipewright/core';
import { describe, expect, it } from 'vitest';
import { scriptForShell } from '../../src/steps/shell.js';

describe('shell templates', () => {
  it('maps GitHub shell names to their templates', () => {
    expect(shellTemplate(undefined)).toBe('bash -e {0}');
    expect(shellTemplate('bash')).toBe('bash --noprofile --norc -eo pipefail {0}');
    expect(shellTemplate('sh')).toBe('sh -e {0}');
    expect(shellTemplate('python')).toBe('python {0}');
    expect(shellTemplate('perl -w {0}')).toBe('perl -w {0}');
  });

  it('rejects an unknown shell without {0}, saying what is allowed', () => {
    expect(() => shellTemplate('fish')).toThrow(/Unsupported shell `fish`: use bash, sh, python/);
  });

  it('builds argv with the script path in place of {0}, honouring quotes', () => {
    expect(shellArgv('bash -e {0}', '/w/s.sh')).toEqual(['bash', '-e', '/w/s.sh']);
    expect(shellArgv(shellTemplate('pwsh'), '/w/s.ps1')).toEqual(['pwsh', '-command', ". '/w/s.ps1'"]);
    expect(splitCommandLine(`a "b c" 'd e'  f`)).toEqual(['a', 'b c', 'd e', 'f']);
    expect(() => splitCommandLine('a "b')).toThrow(/Unterminated/);
  });

  it("wraps a PowerShell script as GitHub's runner does (stop on errors, exit with the last exit code); cmd gets @echo off", () => {
    const wrapped = scriptForShell(shellTemplate('pwsh'), 'Get-Item nope');
    expect(wrapped).toBe(
      "$ErrorActionPreference = 'stop'\nGet-Item nope\nif ((Test-Path -LiteralPath variable:\\LASTEXITCODE)) { exit $LASTEXITCODE }\n",
    );
    expect(scriptForShell('/opt/microsoft/powershell/7/pwsh -File {0}', 'x')).toMatch(/^\$ErrorActionPreference/);
    expect(scriptForShell(shellTemplate('powershell'), 'x')).toMatch(/^\$ErrorActionPreference/);
    expect(scriptForShell('cmd /D /E:ON /V:OFF /S /C "CALL "{0}""', 'dir')).toBe('@echo off\r\ndir');
    expect(scriptForShell(shellTemplate('bash'), 'echo hi')).toBe('echo hi');
    expect(scriptForShell(shellTemplate('python'), 'print(1)')).toBe('print(1)');
  });

  it('picks a script extension the interpreter accepts', () => {
    expect(scriptExtension('python {0}')).toBe('.py');
    expect(scriptExtension('/usr/bin/python3 -u {0}')).toBe('.py');
    expect(scriptExtension(shellTemplate('pwsh'))).toBe('.ps1');
    expect(scriptExtension('bash -e {0}')).toBe('.sh');
  });
});
