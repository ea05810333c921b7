import { pgEnum } from "drizzle-orm/pg-core";
import { networks } from "../lib/network.js";

export const networkEnum = pgEnum("network", networks);
