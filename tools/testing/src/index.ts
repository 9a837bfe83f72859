export type { BackendName } from './backends.js';
export { ALL_BACKENDS, availableBackends, describeWithBackends } from './backends.js';
export type { CloseReport } from './compare.js';
export { closeReport, expectClose, expectNoLeaks, expectValues } from './compare.js';
export { describeWithFixture, fixturePath, fixturesDir } from './fixtures.js';
export type { FixtureFile, FixtureTensor } from './safetensors.js';
export { fixtureTensor, fixtureTensors, readFixture } from './safetensors.js';
