/**
 * Readiness and status for systemd (Type=notify; contrib/allium-relay.service), without a native module: Node has
 * no Unix datagram sockets, so the message goes through systemd's own `systemd-notify` program, which the unit lets
 * speak for the relay (NotifyAccess=all). It waits until the service manager has read the message (a barrier), so
 * the message cannot be lost when it exits. Outside systemd (no NOTIFY_SOCKET) nothing happens.
 *
 *   READY=1        once the relay is running (listeners bound, network joining)
 *   RELOADING=1    on SIGHUP, then READY=1 when the reload is done
 *   STOPPING=1     when an orderly stop begins
 *   STATUS=…       a line `systemctl status` shows
 */
import { spawn } from 'node:child_process';

export interface Notifier {
  (fields: Record<string, string>): Promise<void>;
}

/** Sends the fields to systemd when NOTIFY_SOCKET is set; reports a failure through `onError` (never throws). */
export function systemdNotifier(env: NodeJS.ProcessEnv = process.env, onError: (why: string) => void = () => undefined): Notifier {
  return (fields) => {
    if (!env['NOTIFY_SOCKET']) return Promise.resolve();
    const args = Object.entries(fields).map(([k, v]) => `${k}=${v}`);
    return new Promise<void>((resolve) => {
      const child = spawn('systemd-notify', [`--pid=${process.pid}`, ...args], { stdio: 'ignore', env });
      child.once('error', (e) => {
        onError(`cannot tell systemd (${args.join(' ')}): ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'systemd-notify is not installed' : e.message}`);
        resolve();
      });
      child.once('exit', (code) => {
        if (code !== 0) onError(`systemd-notify ${args.join(' ')} exited with status ${code}`);
        resolve();
      });
    });
  };
}
