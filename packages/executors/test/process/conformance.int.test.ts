import { describeExecutor } from '@pipewright/core/testing';
import { ProcessExecutor } from '@pipewright/executors';
import { tempDir } from './helpers.js';

describeExecutor('ProcessExecutor', async () => {
  const root = await tempDir('pw-conf-');
  return { executor: new ProcessExecutor({ workRoot: root.dir }), cleanup: root.cleanup };
});
