// ApiVersions (key 18), v0..3. The table is the advertised one from protocol/api-versions.ts;
// an unknown ApiVersions version never reaches here (the connection answers it in v0 form).
import type { ApiVersionsResponse } from "../../protocol/generated/types.js";
import { ADVERTISED_APIS } from "../../protocol/api-versions.js";

export function handleApiVersions(): ApiVersionsResponse {
  return {
    errorCode: 0,
    apiKeys: ADVERTISED_APIS.map((api) => ({
      apiKey: api.apiKey,
      minVersion: api.minVersion,
      maxVersion: api.maxVersion,
    })),
    throttleTimeMs: 0,
  };
}
