# One image for every role: `polyforge serve`, `worker`, `migrate`, and the local `chain` of
# docker-compose.yml. TypeScript runs through tsx (a runtime dependency), so there is no build step.
# The Creator Suite (app/), built with the dev dependencies in a stage of its own; only its
# static files reach the image.
FROM node:20-bookworm-slim AS suite
WORKDIR /build
COPY package.json package-lock.json .npmrc ./
# The workspaces' manifests, which the lockfile names (packages/client, packages/mcp).
COPY packages/client/package.json ./packages/client/package.json
COPY packages/mcp/package.json ./packages/mcp/package.json
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY app ./app
COPY scripts/build-app.ts ./scripts/build-app.ts
RUN node_modules/.bin/tsx scripts/build-app.ts

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json .npmrc ./
COPY packages/client/package.json ./packages/client/package.json
COPY packages/mcp/package.json ./packages/mcp/package.json
# Runtime dependencies only, exactly as locked. anvil's binary comes from the npm package
# @foundry-rs/anvil-linux-amd64, so the image is linux/amd64. --ignore-scripts: the package's
# prepare script builds the app, which the suite stage has done.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund
COPY bin ./bin
COPY src ./src
# The MCP tools' one definition, which the server's /mcp and `polyforge mcp` register.
COPY packages/mcp/src ./packages/mcp/src
COPY drizzle ./drizzle
# The compiled dev contracts (USDC, Multicall3) that `polyforge chain` deploys.
COPY contracts/artifacts ./contracts/artifacts
COPY tsconfig.json ./
COPY --from=suite /build/app/dist ./app/dist
# A new named volume takes its mount point's owner, so the node user can write there.
RUN mkdir -p /data/outputs /data/chain && chown node:node /data/outputs /data/chain
USER node
ENTRYPOINT ["node", "bin/polyforge.js"]
CMD ["serve"]
