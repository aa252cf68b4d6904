// Public exports of torch-moe.
export { MoEClassifier } from './MoEClassifier.js';
export { DenseClassifier } from './DenseClassifier.js';
export { loadModel } from './loadModel.js';
export { Classifier, type InferenceOptions, type InputRouting, type PredictionWithRouting } from './Classifier.js';
export { Predictor, type PredictorOptions, type SinglePrediction } from './predictor.js';
export { loadMnist, CLASS_NAMES, DATASETS, type LoadMnistOptions } from './data/loadMnist.js';
export { DataFileError } from './data/idx.js';
export { ModelFileError } from './checkpoint/safetensors.js';
export { NativeLoadError } from './native.js';
export { backend, type Backend, type BlasInfo } from './backend.js';
export { doctor, type DoctorReport } from './doctor.js';
export { setNumThreads, getNumThreads, buildInfo } from './threads.js';
export {
  initDistributed,
  destroyDistributed,
  distributedInfo,
  distributedTraffic,
  DISTRIBUTED_BACKENDS,
  type DistributedOptions,
  type DistributedInfo,
  type DistributedBackend,
  type DistributedTraffic,
} from './distributed.js';
export { formatRoutingTable, formatHistoryLine } from './report.js';
export type { Dataset } from './dataset.js';
export type {
  Device,
  LoadOptions,
  MoEClassifierOptions,
  DenseClassifierOptions,
  TrainOptions,
  TrainHistory,
  EpochMetrics,
  EvaluationResult,
  RoutingStats,
  ExpertShare,
  Routing,
  LrSchedule,
} from './options.js';
export { ROUTINGS, LR_SCHEDULES } from './options.js';
export { version } from './version.js';
export {
  runReferenceExperiment, referenceSettings, referenceTargets, type ReferenceReport, type ReferenceSettings, type TargetCheck,
} from './experiment.js';
