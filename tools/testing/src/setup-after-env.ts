// Specs outside describeWithBackends run on the cpu backend (the reference kernels).
import * as tf from '@tensorflow/tfjs-core';

beforeAll(async () => {
  await tf.setBackend('cpu');
  await tf.ready();
});
