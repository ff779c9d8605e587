/** The HTTP retrieval server (`langchain-dpr/server`). */
export {
  createServer,
  installGracefulShutdown,
  parseRetrieveRequest,
  HttpError,
  type RetrievalServerOptions,
  type RetrieveRequest,
  type RequestLimits,
  type GracefulShutdownOptions,
} from "./server.js";
export { MetricsRegistry, Counter, Gauge, Histogram, parsePrometheusText } from "./metrics.js";
