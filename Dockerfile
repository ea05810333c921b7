# One image for every role: `polyforge serve`, `polyforge worker`, `polyforge migrate`.
FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY bin ./bin
COPY src ./src
COPY drizzle ./drizzle
COPY tsconfig.json ./
# A new named volume takes this directory's owner, so the node user can write outputs there.
RUN mkdir -p /data/outputs && chown node:node /data/outputs
USER node
ENTRYPOINT ["node", "bin/polyforge.js"]
CMD ["serve"]
