import { describeExecutor } from '@pipewright/core/testing';
import { DockerExecutor } from '@pipewright/executors';
import { expect } from 'vitest';
import { containersOf, dockerAvailable, engineId, removeContainersOf, TEST_IMAGE } from './helpers.js';

const available = await dockerAvailable();

describeExecutor(
  'DockerExecutor',
  () => {
    const id = engineId();
    return {
      executor: new DockerExecutor({ engineId: id, network: 'none', defaultImage: TEST_IMAGE }),
      job: { container: { image: TEST_IMAGE, env: {}, volumes: [] } },
      cleanup: async () => {
        const left = containersOf(id);
        removeContainersOf(id);
        expect(left, `containers left by engine ${id}`).toEqual([]);
      },
    };
  },
  { skip: !available },
);
