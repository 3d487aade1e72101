/** The entry of `dist/worker.cjs`: an experiment worker that runs twins from files. */
import { loadTwinModel } from './load-model.js';
import { startWorker } from './worker.js';

startWorker(loadTwinModel);
