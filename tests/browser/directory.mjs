// Writes the generated directory (lib.mjs) of N agents: node directory.mjs N PATH [QUEUES]
import fs from "node:fs";
import { directory } from "./lib.mjs";

const [n, path, queues] = process.argv.slice(2);
fs.writeFileSync(path, JSON.stringify(directory(Number(n), Number(queues || 20))));
