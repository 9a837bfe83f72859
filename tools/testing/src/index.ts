export { ALL_BACKENDS, availableBackends, describeWithBackends } from './backends.js';
export type { BackendName } from './backends.js';
export { closeReport, expectClose, expectNoLeaks, expectValues } from './compare.js';
export type { CloseReport } from './compare.js';
export { describeWithFixture, fixturePath, fixturesDir } from './fixtures.js';
export { fixtureTensor, fixtureTensors, readFixture } from './safetensors.js';
export type { FixtureFile, FixtureTensor } from './safetensors.js';
