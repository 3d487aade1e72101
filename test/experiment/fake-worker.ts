/** A worker entry running the fake model (bundled by the tests into test/.work/). */
import { startWorker } from '../../runtime/experiment/worker.js';
import { createFakeModel, type FakeSource } from './fake-model.js';

startWorker(source => Promise.resolve(createFakeModel(source as FakeSource)));
