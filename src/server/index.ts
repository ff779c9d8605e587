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
export {
  BearerTokenCheck,
  checkHost,
  hostOfHeader,
  isLoopbackAddress,
  normalizeAllowedHosts,
  normalizeCorsOrigins,
  validateServerToken,
  LOOPBACK_HOST_NAMES,
  type AllowedHosts,
  type HostDecision,
  type TokenVerdict,
} from "./security.js";
export { MetricsRegistry, Counter, Gauge, Histogram, parsePrometheusText } from "./metrics.js";
