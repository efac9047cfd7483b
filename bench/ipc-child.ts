/**
 * A benchmark's helper process (a client or a server of its own), spoken to over IPC:
 * `request(message, key)` sends `message` (when given) and waits for a reply carrying
 * `key`; a reply with `error` rejects.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export class IpcChild {
  private readonly child: ChildProcess;
  private readonly waiting: ((message: Record<string, unknown>) => boolean)[] = [];

  /** `script` is relative to this folder (`./fanout-client.js`). */
  constructor(script: string, args: string[] = [], execArgv: string[] = []) {
    this.child = fork(fileURLToPath(new URL(script, import.meta.url)), args, {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      execArgv,
    });
    this.child.on('message', (message: Record<string, unknown>) => {
      const index = this.waiting.findIndex((accept) => accept(message));
      if (index !== -1) this.waiting.splice(index, 1);
    });
  }

  request<T extends Record<string, unknown>>(message: Record<string, unknown> | null, key: string): Promise<T> {
    return new Promise((resolve, reject) => {
      this.waiting.push((reply) => {
        if (typeof reply.error === 'string') {
          reject(new Error(reply.error));
          return true;
        }
        if (!(key in reply)) return false;
        resolve(reply as T);
        return true;
      });
      if (message !== null) this.child.send(message);
    });
  }

  /** Asks the process to close and waits for it to exit (killed after `graceMs`). */
  async close(graceMs = 10_000): Promise<void> {
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.send({ close: true });
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }

  kill(): void {
    this.child.kill();
  }
}
