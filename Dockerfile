# The logkv image: every part (broker, materializer, gateway, CLI) in one image; the command
# picks the part, e.g. `docker run logkv broker --listen 0.0.0.0:9092 ...` (docker-compose.yml
# runs a whole cluster from it). Build: `docker build -t logkv .`
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# Dependencies ship prebuilt binaries (classic-level, snappy, crc32, zstd, lz4): no scripts.
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY . .
RUN npm run build && npm prune --omit=dev --ignore-scripts

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
# libuv's thread pool (fsyncs, LevelDB, file reads): 16 threads, not 4 (see services/cli.ts).
ENV UV_THREADPOOL_SIZE=16
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
VOLUME ["/data"]
# Stops cleanly on SIGTERM: listeners close, consumers stop, stores flush.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "--max-semi-space-size=64", "dist/services/cli.js"]
CMD ["help"]
