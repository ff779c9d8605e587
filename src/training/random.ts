/** The seedable generator used by training lives with the shared utilities. */
export { SeededRandom } from "../utils/random.js";
