#!/usr/bin/env node
// The project runs TypeScript directly through tsx, so `npm start` needs no build step.
import { register } from "tsx/esm/api";

register();
await import("../src/cli.ts");
