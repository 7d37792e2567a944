package asn

import "slices"

// The built-in targets. Seed ASNs and holder names come from the compiled
// ASN table of the project's registry data (potaroo asn.txt, bgp.he.net
// country lists, ipverse/asn-ip, APNIC delegated stats, RIPE as-sets); see
// asn/testdata/PROVENANCE.md. ASNs whose link to the organisation rests on the
// holder name alone are name-only and opt-in.

func builtinTargets() []Target {
	return []Target{
		{
			Name:        "bytedance",
			Description: "ByteDance / TikTok (incl. Lark, BytePlus, Volcano Engine)",
			ID:          1,
			ASNs: []SeedASN{
				{396986, "BYTEDANCE", "Bytedance Inc. (potaroo, bgp.he.net US, ipverse; RIPE as-set comment: TikTok Information Technologies UK)"},
				{11983, "TIKTOK-USDS", "Tiktok U.S. Data Security Inc. (potaroo, bgp.he.net US)"},
				{398175, "LARKSUITE", "Lark Enterprise Applications Inc. (potaroo, ipverse)"},
				{138699, "TIKTOK-AS-AP", "TIKTOK PTE. LTD., SG (potaroo, ipverse, APNIC 2019-03-13)"},
				{137775, "BYTEDANCE", "Beijing Bytedance Network Technology Co., Ltd. (potaroo, APNIC block 137709+100)"},
				{137718, "VOLCANO-ENGINE", "Beijing Volcano Engine Technology Co., Ltd. (potaroo, bgp.he.net CN, ipverse)"},
				{150436, "BYTEPLUS-AS-AP", "Byteplus Pte. Ltd., SG (potaroo, ipverse, APNIC 2022-11-22)"},
			},
			NameOnly: []SeedASN{
				{139158, "FEISHU", "Beijing Feishu Technology Co., Ltd. (potaroo; ByteDance link by holder name only)"},
				{138419, "PPL-AS-AP", "Pico Singapore Pte. Ltd. (potaroo, ipverse; ByteDance link not stated by any source)"},
			},
			ASSets: []string{"AS-BYTEDANCE"},
			Names:  []string{"Bytedance", "TikTok", "Larksuite", "Lark Enterprise", "BytePlus", "Volcano Engine"},
		},
		{
			Name:        "tencent",
			Description: "Tencent / WeChat (incl. Tencent Cloud)",
			ID:          2,
			ASNs: []SeedASN{
				{45090, "TENCENT-NET-AP", "Shenzhen Tencent Computer Systems Company Limited (potaroo, bgp.he.net CN, ipverse, RIPE-NONAUTH aut-num)"},
				{132203, "TENCENT-NET-AP-CN", "Tencent Cloud international (potaroo, bgp.he.net CN, ipverse, APNIC 2012-03-13, RIPE-NONAUTH aut-num)"},
				{132591, "TENCENT-NET-AP-AS", "Tencent AS num for global network, HK (potaroo, ipverse, APNIC 2013-01-29)"},
				{133478, "TENCENT-AS-AP", "Tencent Cloud Computing (Beijing) Co., Ltd (potaroo, bgp.he.net CN, ipverse, APNIC 2014-05-09)"},
				{137876, "TENCENT-AS-AP", "Tencent Thailand Company Limited (potaroo, ipverse, APNIC 2018-05-28)"},
				{58835, "TENCENTCLOUD", "Tencent Cloud (potaroo, APNIC block 58827+40)"},
				{9390, "TENCENT-NET-AP", "Shenzhen Tencent Computer Systems Company Limited (potaroo, APNIC block 9388+8)"},
			},
			ASSets: []string{"AS-TENCENT", "AS132203:AS-TENCENT", "AS132591:AS-TENCENT"},
			Names:  []string{"Tencent", "WeChat"},
		},
	}
}

// Builtin returns fresh copies of the built-in targets.
func Builtin() []Target { return builtinTargets() }

// BuiltinTarget returns a copy of the named built-in target.
func BuiltinTarget(name string) (Target, bool) {
	all := builtinTargets()
	i := slices.IndexFunc(all, func(t Target) bool { return t.Name == name })
	if i < 0 {
		return Target{}, false
	}
	return all[i], true
}
