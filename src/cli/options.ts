import { Option } from "commander";
import { networks } from "../lib/network.js";

/** Command output on stdout, as indented JSON. */
export const print = (value: unknown) =>
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);

// Factories: commander options are mutable, and each command needs its own.
export const accountOption = () =>
  new Option(
    "--account <id-or-wallet>",
    "account id (acc_…) or wallet address",
  ).makeOptionMandatory();
export const networkOption = () =>
  new Option("--network <network>", "live or test").choices(networks);
