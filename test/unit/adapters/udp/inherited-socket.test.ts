import { InheritedSocketError, InheritedUdpSocket } from '../../../../src/adapters/udp/inherited-socket.js';

// What the agent does with the environment heartline-netd --heartbeat-bind sets. Adopting a
// real inherited socket, and a wrong port, are in test/e2e/netd-least-privilege.test.ts.
describe('InheritedUdpSocket.fromEnvironment', () => {
  it('is undefined without HEARTLINE_HEARTBEAT_FD: the agent binds its own socket', async () => {
    await expect(InheritedUdpSocket.fromEnvironment({})).resolves.toBeUndefined();
    await expect(
      InheritedUdpSocket.fromEnvironment({
        HEARTLINE_HEARTBEAT_FD: '',
        HEARTLINE_HEARTBEAT_BIND: '0.0.0.0:694',
      }),
    ).resolves.toBeUndefined();
  });

  it.each([
    ['four', '0.0.0.0:694', /HEARTLINE_HEARTBEAT_FD=four .*not an inherited file descriptor number/],
    ['1', '0.0.0.0:694', /HEARTLINE_HEARTBEAT_FD=1 .*not an inherited file descriptor number \(3 or more\)/],
    ['4', undefined, /HEARTLINE_HEARTBEAT_BIND="" is not ADDR:PORT/],
    ['4', '694', /HEARTLINE_HEARTBEAT_BIND="694" is not ADDR:PORT/],
    ['4', '::1:694', /is not ADDR:PORT \(\[ADDR\]:PORT for IPv6\)/],
    ['4', '[127.0.0.1]:694', /is not ADDR:PORT/],
    ['4', 'node-a:694', /is not ADDR:PORT/],
    ['4', '0.0.0.0:70000', /is not ADDR:PORT/],
  ])(
    'rejects HEARTLINE_HEARTBEAT_FD=%s with HEARTLINE_HEARTBEAT_BIND=%s, naming the variable',
    async (fd, bind, msg) => {
      const err = await InheritedUdpSocket.fromEnvironment({
        HEARTLINE_HEARTBEAT_FD: fd,
        ...(bind !== undefined ? { HEARTLINE_HEARTBEAT_BIND: bind } : {}),
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InheritedSocketError);
      expect((err as Error).message).toMatch(msg);
      expect((err as Error).message).toMatch(/heartline-netd --heartbeat-bind/);
    },
  );
});
