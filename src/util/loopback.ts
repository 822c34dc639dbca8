/** True for an address only this machine can reach (a host name or IP, IPv6 without brackets). */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
