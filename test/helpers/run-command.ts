// Runs a command (kcat, python3, ...) to completion for end-to-end tests, feeding `input` on
// stdin and killing it after `timeoutMs`, so a hung client fails its test instead of the run.
// `env` replaces the environment (default: this process's).
import { spawn } from "node:child_process";

/** A minimal environment for client tools (kcat, python3): system paths, unbuffered python. */
export const CLIENT_ENV: NodeJS.ProcessEnv = { PATH: "/usr/bin:/bin", PYTHONUNBUFFERED: "1" };

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCommand(
  command: string,
  args: string[],
  options: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<RunResult> {
  const timeoutMs = options.timeoutMs ?? 20_000;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"], env: options.env });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${command} ${args.join(" ")} timed out after ${timeoutMs} ms:\n${stderr}`));
    }, timeoutMs);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    // A command that exits without reading its input (kcat -L) closes the pipe first; the
    // exit code tells whether it worked, so the EPIPE is not an error.
    child.stdin.on("error", () => undefined);
    child.stdin.end(options.input ?? "");
  });
}
