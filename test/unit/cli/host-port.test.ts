/** host:port flags, including the unbracketed IPv6 `$(HOST_IP):9694` gives on an IPv6 node. */
import { hostPort, parseHostPort } from '../../../src/cli/host-port.js';

describe('parseHostPort', () => {
  it('splits IPv4, bracketed and unbracketed IPv6, and an empty host', () => {
    expect(parseHostPort('--x', '198.18.0.1:9694')).toEqual({ host: '198.18.0.1', port: 9694 });
    expect(parseHostPort('--x', '[2001:db8::1]:9694')).toEqual({ host: '2001:db8::1', port: 9694 });
    expect(parseHostPort('--x', '2001:db8::1:9694')).toEqual({ host: '2001:db8::1', port: 9694 });
    expect(parseHostPort('--x', ':::694')).toEqual({ host: '::', port: 694 });
    expect(parseHostPort('--x', ':9694')).toEqual({ host: '', port: 9694 });
  });

  it('refuses what is not host:port, naming the flag', () => {
    for (const v of ['2001:db8::1', '198.18.0.1', '198.18.0.1:70000', 'a:b:c:1', '2001:db8::1:70000'])
      expect(() => parseHostPort('--metrics-listen', v)).toThrow(`--metrics-listen "${v}" is not host:port`);
  });

  it('formats a bound address back, bracketing IPv6', () => {
    expect(hostPort({ address: '127.0.0.1', port: 1 })).toBe('127.0.0.1:1');
    expect(hostPort({ address: '::1', port: 2 })).toBe('[::1]:2');
  });
});
