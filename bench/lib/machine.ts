// A description of the machine a benchmark ran on, for the report: cores, CPU model, memory,
// kernel, Node version, load average, and the filesystem type of the data folder (from
// /proc/mounts: the longest mount point that prefixes the folder's real path).
import { readFileSync, realpathSync } from "node:fs";
import { cpus, loadavg, release, totalmem } from "node:os";

export interface MachineInfo {
  cores: number;
  cpuModel: string;
  memoryMb: number;
  kernel: string;
  node: string;
  loadAverage: number[];
  dataRoot: string;
  dataFilesystem: string;
}

function filesystemOf(path: string): string {
  let mounts: string;
  try {
    mounts = readFileSync("/proc/mounts", "utf8");
  } catch {
    return "unknown";
  }
  const real = realpathSync(path);
  let best = { point: "", text: "unknown" };
  for (const line of mounts.split("\n")) {
    const [device, point, type] = line.split(" ");
    if (device === undefined || point === undefined || type === undefined) continue;
    const covers = real === point || real.startsWith(point.endsWith("/") ? point : `${point}/`);
    if (covers && point.length >= best.point.length) {
      best = { point, text: `${type} on ${device}, mounted at ${point}` };
    }
  }
  return best.text;
}

export function describeMachine(dataRoot: string): MachineInfo {
  const cpuList = cpus();
  return {
    cores: cpuList.length,
    cpuModel: cpuList[0]?.model.trim() ?? "unknown",
    memoryMb: Math.round(totalmem() / 1024 / 1024),
    kernel: release(),
    node: process.version,
    loadAverage: loadavg(),
    dataRoot,
    dataFilesystem: filesystemOf(dataRoot),
  };
}
