import { IdCollisionError } from '../../../../src/core/wire/errors.js';
import { IdTable, wireTag } from '../../../../src/core/wire/id-table.js';

describe('IdTable', () => {
  it('maps ids to stable 32-bit tags and back, per space', () => {
    const t = new IdTable({ clusterId: 'ns/c', members: ['a', 'b'], vips: ['ns/a'] });
    const a = t.memberTag('a')!;
    expect(a).toBe(wireTag('member', 'a'));
    expect(t.memberId(a)).toBe('a');
    expect(t.vipId(t.vipTag('ns/a')!)).toBe('ns/a');
    expect(t.memberId(t.vipTag('ns/a')!)).toBeUndefined();
    expect(t.memberTag('zzz')).toBeUndefined();
    expect(t.clusterTag).toBe(wireTag('cluster', 'ns/c'));
    expect(new IdTable({ clusterId: 'ns/c', members: ['a'] }).memberTag('a')).toBe(a);
  });

  it('refuses, at build time, two ids with the same tag, naming both and the fix', () => {
    // Found by search: these two member ids share the tag 0x46255c25 with the default salt.
    const build = (salt?: string) =>
      new IdTable({
        clusterId: 'ns/c',
        members: ['node-127725', 'node-132198'],
        ...(salt === undefined ? {} : { salt }),
      });
    expect(() => build()).toThrow(IdCollisionError);
    expect(() => build()).toThrow(
      /"node-127725" and "node-132198" both map to wire tag 0x46255c25: rename one/,
    );
    expect(build('1').memberTag('node-127725')).not.toBe(build('1').memberTag('node-132198'));
  });

  it('refuses empty ids', () => {
    expect(() => new IdTable({ clusterId: 'c', members: [''] })).toThrow(/empty/);
  });
});
