// Public surface of the Kafka protocol codec layer: primitives (Writer, Reader), the
// schema-driven message codec, framing and headers, the advertised API table, error codes and
// the generated message types. Everything here is pure: no sockets, no timers.
export { Writer, ZERO_COPY_MIN_BYTES } from "./encoder.js";
export { Reader, ProtocolDecodeError } from "./decoder.js";
export {
  decodeRequestBody,
  encodeRequestBody,
  decodeResponseBody,
  encodeResponseBody,
  decodeMessage,
  encodeMessage,
  defaultMessage,
  getMessageSpec,
  getRequestSpec,
  getResponseSpec,
  isValidVersion,
  isFlexibleVersion,
  parseVersionRange,
  inVersionRange,
  deepEqual,
  type MessageBody,
  type RequestBody,
  type ResponseBody,
} from "./codec.js";
export {
  FRAME_SIZE_BYTES,
  FrameSplitter,
  requestHeaderVersion,
  responseHeaderVersion,
  decodeRequestHeader,
  encodeRequestHeader,
  encodeResponseHeader,
  decodeRequestFrame,
  encodeRequestFrame,
  encodeResponseFrame,
  type DecodedRequest,
  type DecodedRequestHeader,
} from "./framing.js";
export {
  ApiKey,
  API_KEY_NAMES,
  ADVERTISED_APIS,
  advertisedRange,
  apiName,
  isSupported,
  type AdvertisedApi,
  type ApiKeyName,
  type ApiKeyValue,
} from "./api-versions.js";
export { KafkaErrorCode } from "./error-codes.js";
export {
  MESSAGE_SPECS,
  type FieldSpec,
  type MessageSpec,
  type StructSpec,
} from "./generated/specs.js";
export type * from "./generated/types.js";
