import { spawnSync } from 'node:child_process';
import { udpSocketDrops } from '../../../../src/adapters/udp/socket-drops.js';
import { UdpTransport } from '../../../../src/adapters/udp/udp-transport.js';

const HEADER =
  '   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops';
const line = (local: string, drops: number) =>
  `  123: ${local} 00000000:0000 07 00000000:00000000 00:00000000 00000000  1000        0 4242 2 0000000000000000 ${drops}`;

describe('udpSocketDrops', () => {
  it('reads the drops column of the line with the socket address, IPv4 in host byte order', () => {
    const text = [HEADER, line('0100007F:02B6', 3), line('0101A8C0:02B6', 17), ''].join('\n');
    const read = (p: string) => (p === '/proc/net/udp' ? text : '');
    expect(udpSocketDrops({ address: '192.168.1.1', port: 694 }, read)).toBe(17);
    expect(udpSocketDrops({ address: '127.0.0.1', port: 694 }, read)).toBe(3);
    expect(udpSocketDrops({ address: '127.0.0.1', port: 695 }, read)).toBeUndefined();
  });

  it('reads /proc/net/udp6 for IPv6, four host-order words', () => {
    // ::1 is 00000000 00000000 00000000 01000000; fd00::5 is 000000FD 00000000 00000000 05000000.
    const text = [
      HEADER,
      line('00000000000000000000000001000000:02B6', 5),
      line('000000FD000000000000000005000000:02B6', 9),
    ].join('\n');
    const read = (p: string) => (p === '/proc/net/udp6' ? text : '');
    expect(udpSocketDrops({ address: '::1', port: 694 }, read)).toBe(5);
    expect(udpSocketDrops({ address: 'fd00::5', port: 694 }, read)).toBe(9);
    expect(udpSocketDrops({ address: '::', port: 694 }, read)).toBeUndefined();
  });

  it('is undefined when the file cannot be read or the address is not an IP', () => {
    const fail = () => {
      throw new Error('ENOENT');
    };
    expect(udpSocketDrops({ address: '127.0.0.1', port: 694 }, fail)).toBeUndefined();
    expect(udpSocketDrops({ address: 'localhost', port: 694 }, () => HEADER)).toBeUndefined();
  });

  it('counts what the kernel drops while the process cannot read (a real socket, its buffer full)', async () => {
    const t = await UdpTransport.open({ address: '127.0.0.1', receiveBufferBytes: 4096 });
    try {
      expect(udpSocketDrops(t.address())).toBe(0);
      // spawnSync blocks this event loop: nothing reads the socket while 400 datagrams arrive.
      const { port } = t.address();
      const r = spawnSync(
        process.execPath,
        [
          '-e',
          `const s=require('dgram').createSocket('udp4');let n=0;const go=()=>{if(n++>=400)return s.close();s.send(Buffer.alloc(300),${port},'127.0.0.1',go)};go()`,
        ],
        { timeout: 10_000 },
      );
      expect(r.status).toBe(0);
      expect(udpSocketDrops(t.address())).toBeGreaterThan(0);
    } finally {
      await t.close();
    }
  });
});
