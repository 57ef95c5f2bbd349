//! Data tables for the ftfy port, generated from ftfy 6.3.1 and Python 3.11.7's unicodedata (Unicode 14.0.0)
//! by the script in this file's trailing comment (`python gen.py > ftfy_data.rs && rustfmt ftfy_data.rs`). Do not edit by hand.

/// `ftfy.badness.BADNESS_RE` (whitespace and comments of the verbose pattern removed).
pub const BADNESS_RE: &str = r#"[\x{80}-\x{9f}]|[\x{a6}\x{a4}\x{a8}\x{ac}\x{af}\x{b8}\x{192}\x{2c6}\x{2c7}\x{2d8}\x{2db}\x{2dc}\x{2020}\x{2021}\x{2030}\x{2310}\x{25ca}\x{fffd}\x{aa}\x{ba}\x{df}\x{e0}-\x{f1}\x{103}\x{105}\x{101}\x{107}\x{10d}\x{10f}\x{111}\x{119}\x{11b}\x{113}\x{117}\x{11f}\x{123}\x{12f}\x{12b}\x{137}\x{13a}\x{13e}\x{142}\x{13c}\x{153}\x{155}\x{15b}\x{15f}\x{161}\x{165}\x{fc}\x{17a}\x{17c}\x{17e}\x{491}\x{fb01}\x{fb02}\x{c0}-\x{d1}\x{d8}\x{dc}\x{dd}\x{102}\x{100}\x{104}\x{106}\x{10c}\x{10e}\x{110}\x{118}\x{11a}\x{112}\x{116}\x{11e}\x{122}\x{130}\x{12a}\x{136}\x{139}\x{13d}\x{141}\x{13b}\x{143}\x{147}\x{145}\x{152}\x{158}\x{15a}\x{15e}\x{160}\x{162}\x{164}\x{16e}\x{170}\x{178}\x{179}\x{17b}\x{17d}\x{490}\x{2502}\x{250c}\x{2510}\x{2518}\x{251c}\x{2524}\x{252c}\x{253c}\x{2550}-\x{256c}\x{2580}\x{2584}\x{2588}\x{258c}\x{2590}\x{2591}\x{2592}\x{2593}\x{a1}\x{ab}\x{bf}\x{a9}\x{384}\x{385}\x{2018}\x{201a}\x{201c}\x{201e}\x{2022}\x{2039}\x{f8ff}\x{ae}\x{bb}\x{2dd}\x{201d}\x{203a}\x{2122}\x{a2}\x{a3}\x{a5}\x{20a7}\x{20ac}\x{b2}\x{b3}\x{b9}\x{b1}\x{bc}\x{bd}\x{be}\x{d7}\x{b5}\x{f7}\x{2044}\x{2202}\x{2206}\x{220f}\x{2211}\x{221a}\x{221e}\x{2229}\x{222b}\x{2248}\x{2260}\x{2261}\x{2264}\x{2265}\x{2116}\x{b6}\x{a7}][\x{a6}\x{a4}\x{a8}\x{ac}\x{af}\x{b8}\x{192}\x{2c6}\x{2c7}\x{2d8}\x{2db}\x{2dc}\x{2020}\x{2021}\x{2030}\x{2310}\x{25ca}\x{fffd}\x{aa}\x{ba}]|[a-zA-Z][\x{3b1}-\x{3c9}\x{3ac}\x{3ad}\x{3ae}\x{3af}\x{3b0}\x{430}-\x{45f}\x{de}\x{391}-\x{3a9}\x{386}\x{388}\x{389}\x{38a}\x{38c}\x{38e}\x{38f}\x{3aa}\x{3ab}\x{401}-\x{42f}][\x{a6}\x{a4}\x{a8}\x{ac}\x{af}\x{b8}\x{192}\x{2c6}\x{2c7}\x{2d8}\x{2db}\x{2dc}\x{2020}\x{2021}\x{2030}\x{2310}\x{25ca}\x{fffd}\x{aa}\x{ba}]|[\x{a6}\x{a4}\x{a8}\x{ac}\x{af}\x{b8}\x{192}\x{2c6}\x{2c7}\x{2d8}\x{2db}\x{2dc}\x{2020}\x{2021}\x{2030}\x{2310}\x{25ca}\x{fffd}\x{aa}\x{ba}][\x{df}\x{e0}-\x{f1}\x{103}\x{105}\x{101}\x{107}\x{10d}\x{10f}\x{111}\x{119}\x{11b}\x{113}\x{117}\x{11f}\x{123}\x{12f}\x{12b}\x{137}\x{13a}\x{13e}\x{142}\x{13c}\x{153}\x{155}\x{15b}\x{15f}\x{161}\x{165}\x{fc}\x{17a}\x{17c}\x{17e}\x{491}\x{fb01}\x{fb02}\x{c0}-\x{d1}\x{d8}\x{dc}\x{dd}\x{102}\x{100}\x{104}\x{106}\x{10c}\x{10e}\x{110}\x{118}\x{11a}\x{112}\x{116}\x{11e}\x{122}\x{130}\x{12a}\x{136}\x{139}\x{13d}\x{141}\x{13b}\x{143}\x{147}\x{145}\x{152}\x{158}\x{15a}\x{15e}\x{160}\x{162}\x{164}\x{16e}\x{170}\x{178}\x{179}\x{17b}\x{17d}\x{490}\x{2502}\x{250c}\x{2510}\x{2518}\x{251c}\x{2524}\x{252c}\x{253c}\x{2550}-\x{256c}\x{2580}\x{2584}\x{2588}\x{258c}\x{2590}\x{2591}\x{2592}\x{2593}\x{a1}\x{ab}\x{bf}\x{a9}\x{384}\x{385}\x{2018}\x{201a}\x{201c}\x{201e}\x{2022}\x{2039}\x{f8ff}\x{ae}\x{bb}\x{2dd}\x{201d}\x{203a}\x{2122}\x{a2}\x{a3}\x{a5}\x{20a7}\x{20ac}\x{b2}\x{b3}\x{b9}\x{b1}\x{bc}\x{bd}\x{be}\x{d7}\x{b5}\x{f7}\x{2044}\x{2202}\x{2206}\x{220f}\x{2211}\x{221a}\x{221e}\x{2229}\x{222b}\x{2248}\x{2260}\x{2261}\x{2264}\x{2265}\x{2116}\x{b6}\x{a7}]|[\x{df}\x{e0}-\x{f1}\x{103}\x{105}\x{101}\x{107}\x{10d}\x{10f}\x{111}\x{119}\x{11b}\x{113}\x{117}\x{11f}\x{123}\x{12f}\x{12b}\x{137}\x{13a}\x{13e}\x{142}\x{13c}\x{153}\x{155}\x{15b}\x{15f}\x{161}\x{165}\x{fc}\x{17a}\x{17c}\x{17e}\x{491}\x{fb01}\x{fb02}\x{3b1}-\x{3c9}\x{3ac}\x{3ad}\x{3ae}\x{3af}\x{3b0}\x{430}-\x{45f}\x{2502}\x{250c}\x{2510}\x{2518}\x{251c}\x{2524}\x{252c}\x{253c}\x{2550}-\x{256c}\x{2580}\x{2584}\x{2588}\x{258c}\x{2590}\x{2591}\x{2592}\x{2593}\x{ae}\x{bb}\x{2dd}\x{201d}\x{203a}\x{2122}\x{a2}\x{a3}\x{a5}\x{20a7}\x{20ac}\x{b2}\x{b3}\x{b9}\x{b1}\x{bc}\x{bd}\x{be}\x{d7}\x{b5}\x{f7}\x{2044}\x{2202}\x{2206}\x{220f}\x{2211}\x{221a}\x{221e}\x{2229}\x{222b}\x{2248}\x{2260}\x{2261}\x{2264}\x{2265}\x{2116}][\x{c0}-\x{d1}\x{d8}\x{dc}\x{dd}\x{102}\x{100}\x{104}\x{106}\x{10c}\x{10e}\x{110}\x{118}\x{11a}\x{112}\x{116}\x{11e}\x{122}\x{130}\x{12a}\x{136}\x{139}\x{13d}\x{141}\x{13b}\x{143}\x{147}\x{145}\x{152}\x{158}\x{15a}\x{15e}\x{160}\x{162}\x{164}\x{16e}\x{170}\x{178}\x{179}\x{17b}\x{17d}\x{490}]|[\x{2502}\x{250c}\x{2510}\x{2518}\x{251c}\x{2524}\x{252c}\x{253c}\x{2550}-\x{256c}\x{2580}\x{2584}\x{2588}\x{258c}\x{2590}\x{2591}\x{2592}\x{2593}\x{ae}\x{bb}\x{2dd}\x{201d}\x{203a}\x{2122}\x{a2}\x{a3}\x{a5}\x{20a7}\x{20ac}\x{b2}\x{b3}\x{b9}\x{b1}\x{bc}\x{bd}\x{be}\x{d7}\x{b5}\x{f7}\x{2044}\x{2202}\x{2206}\x{220f}\x{2211}\x{221a}\x{221e}\x{2229}\x{222b}\x{2248}\x{2260}\x{2261}\x{2264}\x{2265}\x{2116}][\x{df}\x{e0}-\x{f1}\x{103}\x{105}\x{101}\x{107}\x{10d}\x{10f}\x{111}\x{119}\x{11b}\x{113}\x{117}\x{11f}\x{123}\x{12f}\x{12b}\x{137}\x{13a}\x{13e}\x{142}\x{13c}\x{153}\x{155}\x{15b}\x{15f}\x{161}\x{165}\x{fc}\x{17a}\x{17c}\x{17e}\x{491}\x{fb01}\x{fb02}]|[\x{df}\x{e0}-\x{f1}\x{103}\x{105}\x{101}\x{107}\x{10d}\x{10f}\x{111}\x{119}\x{11b}\x{113}\x{117}\x{11f}\x{123}\x{12f}\x{12b}\x{137}\x{13a}\x{13e}\x{142}\x{13c}\x{153}\x{155}\x{15b}\x{15f}\x{161}\x{165}\x{fc}\x{17a}\x{17c}\x{17e}\x{491}\x{fb01}\x{fb02}\x{2502}\x{250c}\x{2510}\x{2518}\x{251c}\x{2524}\x{252c}\x{253c}\x{2550}-\x{256c}\x{2580}\x{2584}\x{2588}\x{258c}\x{2590}\x{2591}\x{2592}\x{2593}\x{ae}\x{bb}\x{2dd}\x{201d}\x{203a}\x{2122}][\x{a2}\x{a3}\x{a5}\x{20a7}\x{20ac}]|[\s\x{1c}-\x{1f}][\x{c0}-\x{d1}\x{d8}\x{dc}\x{dd}\x{102}\x{100}\x{104}\x{106}\x{10c}\x{10e}\x{110}\x{118}\x{11a}\x{112}\x{116}\x{11e}\x{122}\x{130}\x{12a}\x{136}\x{139}\x{13d}\x{141}\x{13b}\x{143}\x{147}\x{145}\x{152}\x{158}\x{15a}\x{15e}\x{160}\x{162}\x{164}\x{16e}\x{170}\x{178}\x{179}\x{17b}\x{17d}\x{490}][\x{a2}\x{a3}\x{a5}\x{20a7}\x{20ac}]|[\x{c0}-\x{d1}\x{d8}\x{dc}\x{dd}\x{102}\x{100}\x{104}\x{106}\x{10c}\x{10e}\x{110}\x{118}\x{11a}\x{112}\x{116}\x{11e}\x{122}\x{130}\x{12a}\x{136}\x{139}\x{13d}\x{141}\x{13b}\x{143}\x{147}\x{145}\x{152}\x{158}\x{15a}\x{15e}\x{160}\x{162}\x{164}\x{16e}\x{170}\x{178}\x{179}\x{17b}\x{17d}\x{490}\x{2502}\x{250c}\x{2510}\x{2518}\x{251c}\x{2524}\x{252c}\x{253c}\x{2550}-\x{256c}\x{2580}\x{2584}\x{2588}\x{258c}\x{2590}\x{2591}\x{2592}\x{2593}][\x{b2}\x{b3}\x{b9}\x{b1}\x{bc}\x{bd}\x{be}\x{d7}\x{b5}\x{f7}\x{2044}\x{2202}\x{2206}\x{220f}\x{2211}\x{221a}\x{221e}\x{2229}\x{222b}\x{2248}\x{2260}\x{2261}\x{2264}\x{2265}\x{2116}\x{b6}\x{a7}]|[\x{df}\x{e0}-\x{f1}\x{103}\x{105}\x{101}\x{107}\x{10d}\x{10f}\x{111}\x{119}\x{11b}\x{113}\x{117}\x{11f}\x{123}\x{12f}\x{12b}\x{137}\x{13a}\x{13e}\x{142}\x{13c}\x{153}\x{155}\x{15b}\x{15f}\x{161}\x{165}\x{fc}\x{17a}\x{17c}\x{17e}\x{491}\x{fb01}\x{fb02}\x{c0}-\x{d1}\x{d8}\x{dc}\x{dd}\x{102}\x{100}\x{104}\x{106}\x{10c}\x{10e}\x{110}\x{118}\x{11a}\x{112}\x{116}\x{11e}\x{122}\x{130}\x{12a}\x{136}\x{139}\x{13d}\x{141}\x{13b}\x{143}\x{147}\x{145}\x{152}\x{158}\x{15a}\x{15e}\x{160}\x{162}\x{164}\x{16e}\x{170}\x{178}\x{179}\x{17b}\x{17d}\x{490}\x{2502}\x{250c}\x{2510}\x{2518}\x{251c}\x{2524}\x{252c}\x{253c}\x{2550}-\x{256c}\x{2580}\x{2584}\x{2588}\x{258c}\x{2590}\x{2591}\x{2592}\x{2593}\x{a2}\x{a3}\x{a5}\x{20a7}\x{20ac}\x{ae}\x{bb}\x{2dd}\x{201d}\x{203a}\x{2122}][\x{a1}\x{ab}\x{bf}\x{a9}\x{384}\x{385}\x{2018}\x{201a}\x{201c}\x{201e}\x{2022}\x{2039}\x{f8ff}][\x{b2}\x{b3}\x{b9}\x{b1}\x{bc}\x{bd}\x{be}\x{d7}\x{b5}\x{f7}\x{2044}\x{2202}\x{2206}\x{220f}\x{2211}\x{221a}\x{221e}\x{2229}\x{222b}\x{2248}\x{2260}\x{2261}\x{2264}\x{2265}\x{2116}]|[\x{df}\x{e0}-\x{f1}\x{103}\x{105}\x{101}\x{107}\x{10d}\x{10f}\x{111}\x{119}\x{11b}\x{113}\x{117}\x{11f}\x{123}\x{12f}\x{12b}\x{137}\x{13a}\x{13e}\x{142}\x{13c}\x{153}\x{155}\x{15b}\x{15f}\x{161}\x{165}\x{fc}\x{17a}\x{17c}\x{17e}\x{491}\x{fb01}\x{fb02}\x{c0}-\x{d1}\x{d8}\x{dc}\x{dd}\x{102}\x{100}\x{104}\x{106}\x{10c}\x{10e}\x{110}\x{118}\x{11a}\x{112}\x{116}\x{11e}\x{122}\x{130}\x{12a}\x{136}\x{139}\x{13d}\x{141}\x{13b}\x{143}\x{147}\x{145}\x{152}\x{158}\x{15a}\x{15e}\x{160}\x{162}\x{164}\x{16e}\x{170}\x{178}\x{179}\x{17b}\x{17d}\x{490}\x{a2}\x{a3}\x{a5}\x{20a7}\x{20ac}\x{b2}\x{b3}\x{b9}\x{b1}\x{bc}\x{bd}\x{be}\x{d7}\x{b5}\x{f7}\x{2044}\x{2202}\x{2206}\x{220f}\x{2211}\x{221a}\x{221e}\x{2229}\x{222b}\x{2248}\x{2260}\x{2261}\x{2264}\x{2265}\x{2116}\x{2502}\x{250c}\x{2510}\x{2518}\x{251c}\x{2524}\x{252c}\x{253c}\x{2550}-\x{256c}\x{2580}\x{2584}\x{2588}\x{258c}\x{2590}\x{2591}\x{2592}\x{2593}\x{b6}\x{a7}][\x{ae}\x{bb}\x{2dd}\x{201d}\x{203a}\x{2122}][\x{a1}\x{ab}\x{bf}\x{a9}\x{384}\x{385}\x{2018}\x{201a}\x{201c}\x{201e}\x{2022}\x{2039}\x{f8ff}]|[\x{a2}\x{a3}\x{a5}\x{20a7}\x{20ac}\x{b2}\x{b3}\x{b9}\x{b1}\x{bc}\x{bd}\x{be}\x{d7}\x{b5}\x{f7}\x{2044}\x{2202}\x{2206}\x{220f}\x{2211}\x{221a}\x{221e}\x{2229}\x{222b}\x{2248}\x{2260}\x{2261}\x{2264}\x{2265}\x{2116}\x{2502}\x{250c}\x{2510}\x{2518}\x{251c}\x{2524}\x{252c}\x{253c}\x{2550}-\x{256c}\x{2580}\x{2584}\x{2588}\x{258c}\x{2590}\x{2591}\x{2592}\x{2593}][\x{a1}\x{ab}\x{bf}\x{a9}\x{384}\x{385}\x{2018}\x{201a}\x{201c}\x{201e}\x{2022}\x{2039}\x{f8ff}]|[a-z][\x{c0}-\x{d1}\x{d8}\x{dc}\x{dd}\x{102}\x{100}\x{104}\x{106}\x{10c}\x{10e}\x{110}\x{118}\x{11a}\x{112}\x{116}\x{11e}\x{122}\x{130}\x{12a}\x{136}\x{139}\x{13d}\x{141}\x{13b}\x{143}\x{147}\x{145}\x{152}\x{158}\x{15a}\x{15e}\x{160}\x{162}\x{164}\x{16e}\x{170}\x{178}\x{179}\x{17b}\x{17d}\x{490}][\x{a1}\x{ab}\x{bf}\x{a9}\x{384}\x{385}\x{2018}\x{201a}\x{201c}\x{201e}\x{2022}\x{2039}\x{f8ff}\x{a2}\x{a3}\x{a5}\x{20a7}\x{20ac}]|[\x{2502}\x{250c}\x{2510}\x{2518}\x{251c}\x{2524}\x{252c}\x{253c}\x{2550}-\x{256c}\x{2580}\x{2584}\x{2588}\x{258c}\x{2590}\x{2591}\x{2592}\x{2593}][\x{d2}-\x{d6}\x{d9}-\x{dc}\x{f2}-\x{f6}\x{f8}-\x{fc}\x{150}\x{14c}\x{16a}\x{172}\x{b0}]|[\x{df}\x{e0}-\x{f1}\x{103}\x{105}\x{101}\x{107}\x{10d}\x{10f}\x{111}\x{119}\x{11b}\x{113}\x{117}\x{11f}\x{123}\x{12f}\x{12b}\x{137}\x{13a}\x{13e}\x{142}\x{13c}\x{153}\x{155}\x{15b}\x{15f}\x{161}\x{165}\x{fc}\x{17a}\x{17c}\x{17e}\x{491}\x{fb01}\x{fb02}\x{c0}-\x{d1}\x{d8}\x{dc}\x{dd}\x{102}\x{100}\x{104}\x{106}\x{10c}\x{10e}\x{110}\x{118}\x{11a}\x{112}\x{116}\x{11e}\x{122}\x{130}\x{12a}\x{136}\x{139}\x{13d}\x{141}\x{13b}\x{143}\x{147}\x{145}\x{152}\x{158}\x{15a}\x{15e}\x{160}\x{162}\x{164}\x{16e}\x{170}\x{178}\x{179}\x{17b}\x{17d}\x{490}\x{a2}\x{a3}\x{a5}\x{20a7}\x{20ac}\x{b2}\x{b3}\x{b9}\x{b1}\x{bc}\x{bd}\x{be}\x{d7}\x{b5}\x{f7}\x{2044}\x{2202}\x{2206}\x{220f}\x{2211}\x{221a}\x{221e}\x{2229}\x{222b}\x{2248}\x{2260}\x{2261}\x{2264}\x{2265}\x{2116}\x{a1}\x{ab}\x{bf}\x{a9}\x{384}\x{385}\x{2018}\x{201a}\x{201c}\x{201e}\x{2022}\x{2039}\x{f8ff}\x{ae}\x{bb}\x{2dd}\x{201d}\x{203a}\x{2122}\x{b6}\x{a7}][\x{2502}\x{250c}\x{2510}\x{2518}\x{251c}\x{2524}\x{252c}\x{253c}\x{2550}-\x{256c}\x{2580}\x{2584}\x{2588}\x{258c}\x{2590}\x{2591}\x{2592}\x{2593}]|[\x{2502}\x{250c}\x{2510}\x{2518}\x{251c}\x{2524}\x{252c}\x{253c}\x{2550}-\x{256c}\x{2580}\x{2584}\x{2588}\x{258c}\x{2590}\x{2591}\x{2592}\x{2593}][\x{ae}\x{bb}\x{2dd}\x{201d}\x{203a}\x{2122}]|[\x{df}\x{e0}-\x{f1}\x{103}\x{105}\x{101}\x{107}\x{10d}\x{10f}\x{111}\x{119}\x{11b}\x{113}\x{117}\x{11f}\x{123}\x{12f}\x{12b}\x{137}\x{13a}\x{13e}\x{142}\x{13c}\x{153}\x{155}\x{15b}\x{15f}\x{161}\x{165}\x{fc}\x{17a}\x{17c}\x{17e}\x{491}\x{fb01}\x{fb02}\x{c0}-\x{d1}\x{d8}\x{dc}\x{dd}\x{102}\x{100}\x{104}\x{106}\x{10c}\x{10e}\x{110}\x{118}\x{11a}\x{112}\x{116}\x{11e}\x{122}\x{130}\x{12a}\x{136}\x{139}\x{13d}\x{141}\x{13b}\x{143}\x{147}\x{145}\x{152}\x{158}\x{15a}\x{15e}\x{160}\x{162}\x{164}\x{16e}\x{170}\x{178}\x{179}\x{17b}\x{17d}\x{490}][\x{a1}\x{ab}\x{bf}\x{a9}\x{384}\x{385}\x{2018}\x{201a}\x{201c}\x{201e}\x{2022}\x{2039}\x{f8ff}\x{ae}\x{bb}\x{2dd}\x{201d}\x{203a}\x{2122}][\p{L}\p{N}_]|[\x{152}\x{153}][^A-Za-z]|[\x{c0}-\x{d1}\x{d8}\x{dc}\x{dd}\x{102}\x{100}\x{104}\x{106}\x{10c}\x{10e}\x{110}\x{118}\x{11a}\x{112}\x{116}\x{11e}\x{122}\x{130}\x{12a}\x{136}\x{139}\x{13d}\x{141}\x{13b}\x{143}\x{147}\x{145}\x{152}\x{158}\x{15a}\x{15e}\x{160}\x{162}\x{164}\x{16e}\x{170}\x{178}\x{179}\x{17b}\x{17d}\x{490}]\x{b0}|[\x{c2}\x{c3}\x{ce}\x{d0}][\x{20ac}\x{153}\x{160}\x{161}\x{a2}\x{a3}\x{178}\x{17e}\xa0\xad\x{ae}\x{a9}\x{b0}\x{b7}\x{bb}\x{a1}\x{ab}\x{bf}\x{a9}\x{384}\x{385}\x{2018}\x{201a}\x{201c}\x{201e}\x{2022}\x{2039}\x{f8ff}\x{ae}\x{bb}\x{2dd}\x{201d}\x{203a}\x{2122}\x{2013}\x{2014}\x{b4}]|\x{d7}[\x{b2}\x{b3}]|[\x{d8}\x{d9}][\x{a0}\x{ad}\x{b7}\x{b4}\x{2013}\x{2014}\x{2015}\x{2026}\x{2019}\x{a2}\x{a3}\x{a5}\x{20a7}\x{20ac}\x{a6}\x{a4}\x{a8}\x{ac}\x{af}\x{b8}\x{192}\x{2c6}\x{2c7}\x{2d8}\x{2db}\x{2dc}\x{2020}\x{2021}\x{2030}\x{2310}\x{25ca}\x{fffd}\x{aa}\x{ba}\x{b2}\x{b3}\x{b9}\x{b1}\x{bc}\x{bd}\x{be}\x{d7}\x{b5}\x{f7}\x{2044}\x{2202}\x{2206}\x{220f}\x{2211}\x{221a}\x{221e}\x{2229}\x{222b}\x{2248}\x{2260}\x{2261}\x{2264}\x{2265}\x{2116}\x{a1}\x{ab}\x{bf}\x{a9}\x{384}\x{385}\x{2018}\x{201a}\x{201c}\x{201e}\x{2022}\x{2039}\x{f8ff}\x{178}\x{160}\x{ae}\x{b0}\x{b5}\x{bb}][\x{d8}\x{d9}][\x{a0}\x{ad}\x{b7}\x{b4}\x{2013}\x{2014}\x{2015}\x{2026}\x{2019}\x{a2}\x{a3}\x{a5}\x{20a7}\x{20ac}\x{a6}\x{a4}\x{a8}\x{ac}\x{af}\x{b8}\x{192}\x{2c6}\x{2c7}\x{2d8}\x{2db}\x{2dc}\x{2020}\x{2021}\x{2030}\x{2310}\x{25ca}\x{fffd}\x{aa}\x{ba}\x{b2}\x{b3}\x{b9}\x{b1}\x{bc}\x{bd}\x{be}\x{d7}\x{b5}\x{f7}\x{2044}\x{2202}\x{2206}\x{220f}\x{2211}\x{221a}\x{221e}\x{2229}\x{222b}\x{2248}\x{2260}\x{2261}\x{2264}\x{2265}\x{2116}\x{a1}\x{ab}\x{bf}\x{a9}\x{384}\x{385}\x{2018}\x{201a}\x{201c}\x{201e}\x{2022}\x{2039}\x{f8ff}\x{178}\x{160}\x{ae}\x{b0}\x{b5}\x{bb}]|\x{e0}[\x{b2}\x{b5}\x{b9}\x{bc}\x{bd}\x{be}]|\x{221a}[\x{b1}\x{2202}\x{2020}\x{2260}\x{ae}\x{2122}\x{b4}\x{2264}\x{2265}\x{a5}\x{b5}\x{f8}]|\x{2248}[\x{b0}\x{a2}]|\x{201a}\x{c4}[\x{ec}\x{ee}\x{ef}\x{f2}\x{f4}\x{fa}\x{f9}\x{fb}\x{2020}\x{b0}\x{a2}\x{3c0}]|\x{201a}[\x{e2}\x{f3}][\x{e0}\x{e4}\x{b0}\x{ea}]|\x{432}\x{402}|[\x{412}\x{413}\x{420}\x{421}][\x{80}-\x{9f}\x{a6}\x{a4}\x{a8}\x{ac}\x{af}\x{b8}\x{192}\x{2c6}\x{2c7}\x{2d8}\x{2db}\x{2dc}\x{2020}\x{2021}\x{2030}\x{2310}\x{25ca}\x{fffd}\x{aa}\x{ba}\x{a1}\x{ab}\x{bf}\x{a9}\x{384}\x{385}\x{2018}\x{201a}\x{201c}\x{201e}\x{2022}\x{2039}\x{f8ff}\x{ae}\x{bb}\x{2dd}\x{201d}\x{203a}\x{2122}\x{a2}\x{a3}\x{a5}\x{20a7}\x{20ac}\x{b0}\x{b5}][\x{412}\x{413}\x{420}\x{421}]|\x{413}\x{45e}\x{412}\x{402}\x{412}.[A-Za-z\x{20}]|\x{c3}[\xa0\x{a1}]|[a-z][\s\x{1c}-\x{1f}]?[\x{c3}\x{c2}][\x{20}]|^[\x{c3}\x{c2}][\x{20}]|[a-z\x{2e}\x{2c}\x{3f}\x{21}\x{ae}\x{bb}\x{2dd}\x{201d}\x{203a}\x{2122}]\x{c2}[\x{20}\x{a1}\x{ab}\x{bf}\x{a9}\x{384}\x{385}\x{2018}\x{201a}\x{201c}\x{201e}\x{2022}\x{2039}\x{f8ff}\x{ae}\x{bb}\x{2dd}\x{201d}\x{203a}\x{2122}]|\x{3b2}\x{20ac}[\x{2122}\xa0\x{386}\xad\x{ae}\x{b0}]|[\x{392}\x{393}\x{39e}\x{39f}][\x{80}-\x{9f}\x{a6}\x{a4}\x{a8}\x{ac}\x{af}\x{b8}\x{192}\x{2c6}\x{2c7}\x{2d8}\x{2db}\x{2dc}\x{2020}\x{2021}\x{2030}\x{2310}\x{25ca}\x{fffd}\x{aa}\x{ba}\x{a1}\x{ab}\x{bf}\x{a9}\x{384}\x{385}\x{2018}\x{201a}\x{201c}\x{201e}\x{2022}\x{2039}\x{f8ff}\x{ae}\x{bb}\x{2dd}\x{201d}\x{203a}\x{2122}\x{a2}\x{a3}\x{a5}\x{20a7}\x{20ac}\x{b0}][\x{392}\x{393}\x{39e}\x{39f}]|\x{101}\x{20ac}"#;
/// `ftfy.chardata.UTF8_DETECTOR_RE` without its lookbehind (checked in code with `UTF8_CONTINUATION_STRICT`).
pub const UTF8_DETECTOR_RE: &str = r#"([\x{102}\x{c2}\x{c4}\x{100}\x{c5}\x{c3}\x{c6}\x{106}\x{10c}\x{c7}\x{10e}\x{110}\x{c9}\x{11a}\x{ca}\x{cb}\x{116}\x{c8}\x{112}\x{118}\x{d0}\x{11e}\x{122}\x{cd}\x{ce}\x{cf}\x{130}\x{cc}\x{12a}\x{136}\x{139}\x{13b}\x{141}\x{143}\x{147}\x{145}\x{d1}\x{d3}\x{d4}\x{d6}\x{150}\x{d2}\x{14c}\x{d8}\x{d5}\x{158}\x{15a}\x{160}\x{15e}\x{162}\x{de}\x{da}\x{db}\x{dc}\x{170}\x{d9}\x{16a}\x{172}\x{16e}\x{dd}\x{179}\x{17d}\x{17b}\x{df}\x{d7}\x{392}\x{393}\x{394}\x{395}\x{396}\x{397}\x{398}\x{399}\x{39a}\x{39b}\x{39c}\x{39d}\x{39e}\x{39f}\x{3a0}\x{3a1}\x{3a3}\x{3a4}\x{3a5}\x{3a6}\x{3a7}\x{3a8}\x{3a9}\x{3aa}\x{3ab}\x{3ac}\x{3ad}\x{3ae}\x{3af}\x{412}\x{413}\x{414}\x{415}\x{416}\x{417}\x{418}\x{419}\x{41a}\x{41b}\x{41c}\x{41d}\x{41e}\x{41f}\x{420}\x{421}\x{422}\x{423}\x{424}\x{425}\x{426}\x{427}\x{428}\x{429}\x{42a}\x{42b}\x{42c}\x{42d}\x{42e}\x{42f}][\x{80}-\x{bf}\x{20}\x{104}\x{c6}\x{13d}\x{141}\x{d8}\x{156}\x{15a}\x{160}\x{15e}\x{164}\x{178}\x{179}\x{17d}\x{17b}\x{152}\x{105}\x{e6}\x{192}\x{13e}\x{142}\x{f8}\x{157}\x{15b}\x{161}\x{15f}\x{165}\x{17a}\x{17e}\x{17c}\x{153}\x{2c6}\x{2c7}\x{2d8}\x{2db}\x{2dc}\x{2dd}\x{384}\x{385}\x{386}\x{388}\x{389}\x{38a}\x{38c}\x{38e}\x{38f}\x{401}\x{402}\x{403}\x{404}\x{405}\x{406}\x{407}\x{408}\x{409}\x{40a}\x{40b}\x{40c}\x{40e}\x{40f}\x{451}\x{452}\x{453}\x{454}\x{455}\x{456}\x{457}\x{458}\x{459}\x{45a}\x{45b}\x{45c}\x{45e}\x{45f}\x{490}\x{491}\x{2013}\x{2014}\x{2015}\x{2018}\x{2019}\x{201a}\x{201c}\x{201d}\x{201e}\x{2020}\x{2021}\x{2022}\x{2026}\x{2030}\x{2039}\x{203a}\x{20ac}\x{2116}\x{2122}]|[\x{e1}\x{103}\x{e2}\x{e4}\x{e0}\x{101}\x{105}\x{e5}\x{e3}\x{e6}\x{107}\x{10d}\x{e7}\x{10f}\x{e9}\x{11b}\x{ea}\x{eb}\x{117}\x{e8}\x{113}\x{119}\x{119}\x{123}\x{ed}\x{ee}\x{ef}\x{ec}\x{12b}\x{12f}\x{137}\x{13a}\x{13c}\x{155}\x{17a}\x{3b0}\x{3b1}\x{3b2}\x{3b3}\x{3b4}\x{3b5}\x{3b6}\x{3b7}\x{3b8}\x{3b9}\x{3ba}\x{3bb}\x{3bc}\x{3bd}\x{3be}\x{3bf}\x{430}\x{431}\x{432}\x{433}\x{434}\x{435}\x{436}\x{437}\x{438}\x{439}\x{43a}\x{43b}\x{43c}\x{43d}\x{43e}\x{43f}][\x{80}-\x{bf}\x{20}\x{104}\x{c6}\x{13d}\x{141}\x{d8}\x{156}\x{15a}\x{160}\x{15e}\x{164}\x{178}\x{179}\x{17d}\x{17b}\x{152}\x{105}\x{e6}\x{192}\x{13e}\x{142}\x{f8}\x{157}\x{15b}\x{161}\x{15f}\x{165}\x{17a}\x{17e}\x{17c}\x{153}\x{2c6}\x{2c7}\x{2d8}\x{2db}\x{2dc}\x{2dd}\x{384}\x{385}\x{386}\x{388}\x{389}\x{38a}\x{38c}\x{38e}\x{38f}\x{401}\x{402}\x{403}\x{404}\x{405}\x{406}\x{407}\x{408}\x{409}\x{40a}\x{40b}\x{40c}\x{40e}\x{40f}\x{451}\x{452}\x{453}\x{454}\x{455}\x{456}\x{457}\x{458}\x{459}\x{45a}\x{45b}\x{45c}\x{45e}\x{45f}\x{490}\x{491}\x{2013}\x{2014}\x{2015}\x{2018}\x{2019}\x{201a}\x{201c}\x{201d}\x{201e}\x{2020}\x{2021}\x{2022}\x{2026}\x{2030}\x{2039}\x{203a}\x{20ac}\x{2116}\x{2122}]{2}|[\x{111}\x{f0}\x{11f}\x{f3}\x{161}\x{3c0}\x{3c3}\x{440}\x{443}][\x{80}-\x{bf}\x{20}\x{104}\x{c6}\x{13d}\x{141}\x{d8}\x{156}\x{15a}\x{160}\x{15e}\x{164}\x{178}\x{179}\x{17d}\x{17b}\x{152}\x{105}\x{e6}\x{192}\x{13e}\x{142}\x{f8}\x{157}\x{15b}\x{161}\x{15f}\x{165}\x{17a}\x{17e}\x{17c}\x{153}\x{2c6}\x{2c7}\x{2d8}\x{2db}\x{2dc}\x{2dd}\x{384}\x{385}\x{386}\x{388}\x{389}\x{38a}\x{38c}\x{38e}\x{38f}\x{401}\x{402}\x{403}\x{404}\x{405}\x{406}\x{407}\x{408}\x{409}\x{40a}\x{40b}\x{40c}\x{40e}\x{40f}\x{451}\x{452}\x{453}\x{454}\x{455}\x{456}\x{457}\x{458}\x{459}\x{45a}\x{45b}\x{45c}\x{45e}\x{45f}\x{490}\x{491}\x{2013}\x{2014}\x{2015}\x{2018}\x{2019}\x{201a}\x{201c}\x{201d}\x{201e}\x{2020}\x{2021}\x{2022}\x{2026}\x{2030}\x{2039}\x{203a}\x{20ac}\x{2116}\x{2122}]{3})+"#;
/// The lookbehind class of `UTF8_DETECTOR_RE`.
pub const UTF8_CONTINUATION_STRICT: &str = r#"[\x{80}-\x{bf}\x{104}\x{c6}\x{13d}\x{141}\x{d8}\x{156}\x{15a}\x{160}\x{15e}\x{164}\x{178}\x{179}\x{17d}\x{17b}\x{152}\x{105}\x{e6}\x{192}\x{13e}\x{142}\x{f8}\x{157}\x{15b}\x{161}\x{15f}\x{165}\x{17a}\x{17e}\x{17c}\x{153}\x{2c6}\x{2c7}\x{2d8}\x{2db}\x{2dc}\x{2dd}\x{384}\x{385}\x{386}\x{388}\x{389}\x{38a}\x{38c}\x{38e}\x{38f}\x{401}\x{402}\x{403}\x{404}\x{405}\x{406}\x{407}\x{408}\x{409}\x{40a}\x{40b}\x{40c}\x{40e}\x{40f}\x{451}\x{452}\x{453}\x{454}\x{455}\x{456}\x{457}\x{458}\x{459}\x{45a}\x{45b}\x{45c}\x{45e}\x{45f}\x{490}\x{491}\x{2020}\x{2021}\x{2030}\x{2039}\x{203a}\x{20ac}\x{2116}\x{2122}]"#;

/// `(name, chars of bytes 0x80..=0xFF, char of byte 0x1A)` for `ftfy.chardata.CHARMAP_ENCODINGS`, in order.
pub const CHARMAP_ENCODINGS: [(&str, &str, char); 10] = [
    (
        "latin-1",
        "\u{80}\u{81}\u{82}\u{83}\u{84}\u{85}\u{86}\u{87}\u{88}\u{89}\u{8a}\u{8b}\u{8c}\u{8d}\u{8e}\u{8f}\u{90}\u{91}\u{92}\u{93}\u{94}\u{95}\u{96}\u{97}\u{98}\u{99}\u{9a}\u{9b}\u{9c}\u{9d}\u{9e}\u{9f}\u{a0}\u{a1}\u{a2}\u{a3}\u{a4}\u{a5}\u{a6}\u{a7}\u{a8}\u{a9}\u{aa}\u{ab}\u{ac}\u{ad}\u{ae}\u{af}\u{b0}\u{b1}\u{b2}\u{b3}\u{b4}\u{b5}\u{b6}\u{b7}\u{b8}\u{b9}\u{ba}\u{bb}\u{bc}\u{bd}\u{be}\u{bf}\u{c0}\u{c1}\u{c2}\u{c3}\u{c4}\u{c5}\u{c6}\u{c7}\u{c8}\u{c9}\u{ca}\u{cb}\u{cc}\u{cd}\u{ce}\u{cf}\u{d0}\u{d1}\u{d2}\u{d3}\u{d4}\u{d5}\u{d6}\u{d7}\u{d8}\u{d9}\u{da}\u{db}\u{dc}\u{dd}\u{de}\u{df}\u{e0}\u{e1}\u{e2}\u{e3}\u{e4}\u{e5}\u{e6}\u{e7}\u{e8}\u{e9}\u{ea}\u{eb}\u{ec}\u{ed}\u{ee}\u{ef}\u{f0}\u{f1}\u{f2}\u{f3}\u{f4}\u{f5}\u{f6}\u{f7}\u{f8}\u{f9}\u{fa}\u{fb}\u{fc}\u{fd}\u{fe}\u{ff}",
        '\u{1a}',
    ),
    (
        "sloppy-windows-1252",
        "\u{20ac}\u{81}\u{201a}\u{192}\u{201e}\u{2026}\u{2020}\u{2021}\u{2c6}\u{2030}\u{160}\u{2039}\u{152}\u{8d}\u{17d}\u{8f}\u{90}\u{2018}\u{2019}\u{201c}\u{201d}\u{2022}\u{2013}\u{2014}\u{2dc}\u{2122}\u{161}\u{203a}\u{153}\u{9d}\u{17e}\u{178}\u{a0}\u{a1}\u{a2}\u{a3}\u{a4}\u{a5}\u{a6}\u{a7}\u{a8}\u{a9}\u{aa}\u{ab}\u{ac}\u{ad}\u{ae}\u{af}\u{b0}\u{b1}\u{b2}\u{b3}\u{b4}\u{b5}\u{b6}\u{b7}\u{b8}\u{b9}\u{ba}\u{bb}\u{bc}\u{bd}\u{be}\u{bf}\u{c0}\u{c1}\u{c2}\u{c3}\u{c4}\u{c5}\u{c6}\u{c7}\u{c8}\u{c9}\u{ca}\u{cb}\u{cc}\u{cd}\u{ce}\u{cf}\u{d0}\u{d1}\u{d2}\u{d3}\u{d4}\u{d5}\u{d6}\u{d7}\u{d8}\u{d9}\u{da}\u{db}\u{dc}\u{dd}\u{de}\u{df}\u{e0}\u{e1}\u{e2}\u{e3}\u{e4}\u{e5}\u{e6}\u{e7}\u{e8}\u{e9}\u{ea}\u{eb}\u{ec}\u{ed}\u{ee}\u{ef}\u{f0}\u{f1}\u{f2}\u{f3}\u{f4}\u{f5}\u{f6}\u{f7}\u{f8}\u{f9}\u{fa}\u{fb}\u{fc}\u{fd}\u{fe}\u{ff}",
        '\u{fffd}',
    ),
    (
        "sloppy-windows-1251",
        "\u{402}\u{403}\u{201a}\u{453}\u{201e}\u{2026}\u{2020}\u{2021}\u{20ac}\u{2030}\u{409}\u{2039}\u{40a}\u{40c}\u{40b}\u{40f}\u{452}\u{2018}\u{2019}\u{201c}\u{201d}\u{2022}\u{2013}\u{2014}\u{98}\u{2122}\u{459}\u{203a}\u{45a}\u{45c}\u{45b}\u{45f}\u{a0}\u{40e}\u{45e}\u{408}\u{a4}\u{490}\u{a6}\u{a7}\u{401}\u{a9}\u{404}\u{ab}\u{ac}\u{ad}\u{ae}\u{407}\u{b0}\u{b1}\u{406}\u{456}\u{491}\u{b5}\u{b6}\u{b7}\u{451}\u{2116}\u{454}\u{bb}\u{458}\u{405}\u{455}\u{457}\u{410}\u{411}\u{412}\u{413}\u{414}\u{415}\u{416}\u{417}\u{418}\u{419}\u{41a}\u{41b}\u{41c}\u{41d}\u{41e}\u{41f}\u{420}\u{421}\u{422}\u{423}\u{424}\u{425}\u{426}\u{427}\u{428}\u{429}\u{42a}\u{42b}\u{42c}\u{42d}\u{42e}\u{42f}\u{430}\u{431}\u{432}\u{433}\u{434}\u{435}\u{436}\u{437}\u{438}\u{439}\u{43a}\u{43b}\u{43c}\u{43d}\u{43e}\u{43f}\u{440}\u{441}\u{442}\u{443}\u{444}\u{445}\u{446}\u{447}\u{448}\u{449}\u{44a}\u{44b}\u{44c}\u{44d}\u{44e}\u{44f}",
        '\u{fffd}',
    ),
    (
        "sloppy-windows-1250",
        "\u{20ac}\u{81}\u{201a}\u{83}\u{201e}\u{2026}\u{2020}\u{2021}\u{88}\u{2030}\u{160}\u{2039}\u{15a}\u{164}\u{17d}\u{179}\u{90}\u{2018}\u{2019}\u{201c}\u{201d}\u{2022}\u{2013}\u{2014}\u{98}\u{2122}\u{161}\u{203a}\u{15b}\u{165}\u{17e}\u{17a}\u{a0}\u{2c7}\u{2d8}\u{141}\u{a4}\u{104}\u{a6}\u{a7}\u{a8}\u{a9}\u{15e}\u{ab}\u{ac}\u{ad}\u{ae}\u{17b}\u{b0}\u{b1}\u{2db}\u{142}\u{b4}\u{b5}\u{b6}\u{b7}\u{b8}\u{105}\u{15f}\u{bb}\u{13d}\u{2dd}\u{13e}\u{17c}\u{154}\u{c1}\u{c2}\u{102}\u{c4}\u{139}\u{106}\u{c7}\u{10c}\u{c9}\u{118}\u{cb}\u{11a}\u{cd}\u{ce}\u{10e}\u{110}\u{143}\u{147}\u{d3}\u{d4}\u{150}\u{d6}\u{d7}\u{158}\u{16e}\u{da}\u{170}\u{dc}\u{dd}\u{162}\u{df}\u{155}\u{e1}\u{e2}\u{103}\u{e4}\u{13a}\u{107}\u{e7}\u{10d}\u{e9}\u{119}\u{eb}\u{11b}\u{ed}\u{ee}\u{10f}\u{111}\u{144}\u{148}\u{f3}\u{f4}\u{151}\u{f6}\u{f7}\u{159}\u{16f}\u{fa}\u{171}\u{fc}\u{fd}\u{163}\u{2d9}",
        '\u{fffd}',
    ),
    (
        "sloppy-windows-1253",
        "\u{20ac}\u{81}\u{201a}\u{192}\u{201e}\u{2026}\u{2020}\u{2021}\u{88}\u{2030}\u{8a}\u{2039}\u{8c}\u{8d}\u{8e}\u{8f}\u{90}\u{2018}\u{2019}\u{201c}\u{201d}\u{2022}\u{2013}\u{2014}\u{98}\u{2122}\u{9a}\u{203a}\u{9c}\u{9d}\u{9e}\u{9f}\u{a0}\u{385}\u{386}\u{a3}\u{a4}\u{a5}\u{a6}\u{a7}\u{a8}\u{a9}\u{aa}\u{ab}\u{ac}\u{ad}\u{ae}\u{2015}\u{b0}\u{b1}\u{b2}\u{b3}\u{384}\u{b5}\u{b6}\u{b7}\u{388}\u{389}\u{38a}\u{bb}\u{38c}\u{bd}\u{38e}\u{38f}\u{390}\u{391}\u{392}\u{393}\u{394}\u{395}\u{396}\u{397}\u{398}\u{399}\u{39a}\u{39b}\u{39c}\u{39d}\u{39e}\u{39f}\u{3a0}\u{3a1}\u{d2}\u{3a3}\u{3a4}\u{3a5}\u{3a6}\u{3a7}\u{3a8}\u{3a9}\u{3aa}\u{3ab}\u{3ac}\u{3ad}\u{3ae}\u{3af}\u{3b0}\u{3b1}\u{3b2}\u{3b3}\u{3b4}\u{3b5}\u{3b6}\u{3b7}\u{3b8}\u{3b9}\u{3ba}\u{3bb}\u{3bc}\u{3bd}\u{3be}\u{3bf}\u{3c0}\u{3c1}\u{3c2}\u{3c3}\u{3c4}\u{3c5}\u{3c6}\u{3c7}\u{3c8}\u{3c9}\u{3ca}\u{3cb}\u{3cc}\u{3cd}\u{3ce}\u{ff}",
        '\u{fffd}',
    ),
    (
        "sloppy-windows-1254",
        "\u{20ac}\u{81}\u{201a}\u{192}\u{201e}\u{2026}\u{2020}\u{2021}\u{2c6}\u{2030}\u{160}\u{2039}\u{152}\u{8d}\u{8e}\u{8f}\u{90}\u{2018}\u{2019}\u{201c}\u{201d}\u{2022}\u{2013}\u{2014}\u{2dc}\u{2122}\u{161}\u{203a}\u{153}\u{9d}\u{9e}\u{178}\u{a0}\u{a1}\u{a2}\u{a3}\u{a4}\u{a5}\u{a6}\u{a7}\u{a8}\u{a9}\u{aa}\u{ab}\u{ac}\u{ad}\u{ae}\u{af}\u{b0}\u{b1}\u{b2}\u{b3}\u{b4}\u{b5}\u{b6}\u{b7}\u{b8}\u{b9}\u{ba}\u{bb}\u{bc}\u{bd}\u{be}\u{bf}\u{c0}\u{c1}\u{c2}\u{c3}\u{c4}\u{c5}\u{c6}\u{c7}\u{c8}\u{c9}\u{ca}\u{cb}\u{cc}\u{cd}\u{ce}\u{cf}\u{11e}\u{d1}\u{d2}\u{d3}\u{d4}\u{d5}\u{d6}\u{d7}\u{d8}\u{d9}\u{da}\u{db}\u{dc}\u{130}\u{15e}\u{df}\u{e0}\u{e1}\u{e2}\u{e3}\u{e4}\u{e5}\u{e6}\u{e7}\u{e8}\u{e9}\u{ea}\u{eb}\u{ec}\u{ed}\u{ee}\u{ef}\u{11f}\u{f1}\u{f2}\u{f3}\u{f4}\u{f5}\u{f6}\u{f7}\u{f8}\u{f9}\u{fa}\u{fb}\u{fc}\u{131}\u{15f}\u{ff}",
        '\u{fffd}',
    ),
    (
        "sloppy-windows-1257",
        "\u{20ac}\u{81}\u{201a}\u{83}\u{201e}\u{2026}\u{2020}\u{2021}\u{88}\u{2030}\u{8a}\u{2039}\u{8c}\u{a8}\u{2c7}\u{b8}\u{90}\u{2018}\u{2019}\u{201c}\u{201d}\u{2022}\u{2013}\u{2014}\u{98}\u{2122}\u{9a}\u{203a}\u{9c}\u{af}\u{2db}\u{9f}\u{a0}\u{a1}\u{a2}\u{a3}\u{a4}\u{a5}\u{a6}\u{a7}\u{d8}\u{a9}\u{156}\u{ab}\u{ac}\u{ad}\u{ae}\u{c6}\u{b0}\u{b1}\u{b2}\u{b3}\u{b4}\u{b5}\u{b6}\u{b7}\u{f8}\u{b9}\u{157}\u{bb}\u{bc}\u{bd}\u{be}\u{e6}\u{104}\u{12e}\u{100}\u{106}\u{c4}\u{c5}\u{118}\u{112}\u{10c}\u{c9}\u{179}\u{116}\u{122}\u{136}\u{12a}\u{13b}\u{160}\u{143}\u{145}\u{d3}\u{14c}\u{d5}\u{d6}\u{d7}\u{172}\u{141}\u{15a}\u{16a}\u{dc}\u{17b}\u{17d}\u{df}\u{105}\u{12f}\u{101}\u{107}\u{e4}\u{e5}\u{119}\u{113}\u{10d}\u{e9}\u{17a}\u{117}\u{123}\u{137}\u{12b}\u{13c}\u{161}\u{144}\u{146}\u{f3}\u{14d}\u{f5}\u{f6}\u{f7}\u{173}\u{142}\u{15b}\u{16b}\u{fc}\u{17c}\u{17e}\u{2d9}",
        '\u{fffd}',
    ),
    (
        "iso-8859-2",
        "\u{80}\u{81}\u{82}\u{83}\u{84}\u{85}\u{86}\u{87}\u{88}\u{89}\u{8a}\u{8b}\u{8c}\u{8d}\u{8e}\u{8f}\u{90}\u{91}\u{92}\u{93}\u{94}\u{95}\u{96}\u{97}\u{98}\u{99}\u{9a}\u{9b}\u{9c}\u{9d}\u{9e}\u{9f}\u{a0}\u{104}\u{2d8}\u{141}\u{a4}\u{13d}\u{15a}\u{a7}\u{a8}\u{160}\u{15e}\u{164}\u{179}\u{ad}\u{17d}\u{17b}\u{b0}\u{105}\u{2db}\u{142}\u{b4}\u{13e}\u{15b}\u{2c7}\u{b8}\u{161}\u{15f}\u{165}\u{17a}\u{2dd}\u{17e}\u{17c}\u{154}\u{c1}\u{c2}\u{102}\u{c4}\u{139}\u{106}\u{c7}\u{10c}\u{c9}\u{118}\u{cb}\u{11a}\u{cd}\u{ce}\u{10e}\u{110}\u{143}\u{147}\u{d3}\u{d4}\u{150}\u{d6}\u{d7}\u{158}\u{16e}\u{da}\u{170}\u{dc}\u{dd}\u{162}\u{df}\u{155}\u{e1}\u{e2}\u{103}\u{e4}\u{13a}\u{107}\u{e7}\u{10d}\u{e9}\u{119}\u{eb}\u{11b}\u{ed}\u{ee}\u{10f}\u{111}\u{144}\u{148}\u{f3}\u{f4}\u{151}\u{f6}\u{f7}\u{159}\u{16f}\u{fa}\u{171}\u{fc}\u{fd}\u{163}\u{2d9}",
        '\u{1a}',
    ),
    (
        "macroman",
        "\u{c4}\u{c5}\u{c7}\u{c9}\u{d1}\u{d6}\u{dc}\u{e1}\u{e0}\u{e2}\u{e4}\u{e3}\u{e5}\u{e7}\u{e9}\u{e8}\u{ea}\u{eb}\u{ed}\u{ec}\u{ee}\u{ef}\u{f1}\u{f3}\u{f2}\u{f4}\u{f6}\u{f5}\u{fa}\u{f9}\u{fb}\u{fc}\u{2020}\u{b0}\u{a2}\u{a3}\u{a7}\u{2022}\u{b6}\u{df}\u{ae}\u{a9}\u{2122}\u{b4}\u{a8}\u{2260}\u{c6}\u{d8}\u{221e}\u{b1}\u{2264}\u{2265}\u{a5}\u{b5}\u{2202}\u{2211}\u{220f}\u{3c0}\u{222b}\u{aa}\u{ba}\u{3a9}\u{e6}\u{f8}\u{bf}\u{a1}\u{ac}\u{221a}\u{192}\u{2248}\u{2206}\u{ab}\u{bb}\u{2026}\u{a0}\u{c0}\u{c3}\u{d5}\u{152}\u{153}\u{2013}\u{2014}\u{201c}\u{201d}\u{2018}\u{2019}\u{f7}\u{25ca}\u{ff}\u{178}\u{2044}\u{20ac}\u{2039}\u{203a}\u{fb01}\u{fb02}\u{2021}\u{b7}\u{201a}\u{201e}\u{2030}\u{c2}\u{ca}\u{c1}\u{cb}\u{c8}\u{cd}\u{ce}\u{cf}\u{cc}\u{d3}\u{d4}\u{f8ff}\u{d2}\u{da}\u{db}\u{d9}\u{131}\u{2c6}\u{2dc}\u{af}\u{2d8}\u{2d9}\u{2da}\u{b8}\u{2dd}\u{2db}\u{2c7}",
        '\u{1a}',
    ),
    (
        "cp437",
        "\u{c7}\u{fc}\u{e9}\u{e2}\u{e4}\u{e0}\u{e5}\u{e7}\u{ea}\u{eb}\u{e8}\u{ef}\u{ee}\u{ec}\u{c4}\u{c5}\u{c9}\u{e6}\u{c6}\u{f4}\u{f6}\u{f2}\u{fb}\u{f9}\u{ff}\u{d6}\u{dc}\u{a2}\u{a3}\u{a5}\u{20a7}\u{192}\u{e1}\u{ed}\u{f3}\u{fa}\u{f1}\u{d1}\u{aa}\u{ba}\u{bf}\u{2310}\u{ac}\u{bd}\u{bc}\u{a1}\u{ab}\u{bb}\u{2591}\u{2592}\u{2593}\u{2502}\u{2524}\u{2561}\u{2562}\u{2556}\u{2555}\u{2563}\u{2551}\u{2557}\u{255d}\u{255c}\u{255b}\u{2510}\u{2514}\u{2534}\u{252c}\u{251c}\u{2500}\u{253c}\u{255e}\u{255f}\u{255a}\u{2554}\u{2569}\u{2566}\u{2560}\u{2550}\u{256c}\u{2567}\u{2568}\u{2564}\u{2565}\u{2559}\u{2558}\u{2552}\u{2553}\u{256b}\u{256a}\u{2518}\u{250c}\u{2588}\u{2584}\u{258c}\u{2590}\u{2580}\u{3b1}\u{df}\u{393}\u{3c0}\u{3a3}\u{3c3}\u{b5}\u{3c4}\u{3a6}\u{398}\u{3a9}\u{3b4}\u{221e}\u{3c6}\u{3b5}\u{2229}\u{2261}\u{b1}\u{2265}\u{2264}\u{2320}\u{2321}\u{f7}\u{2248}\u{b0}\u{2219}\u{b7}\u{221a}\u{207f}\u{b2}\u{25a0}\u{a0}",
        '\u{1a}',
    ),
];

/// `html.entities.html5` (what `html.unescape` knows), space separated `name=hex,hex`; names ending
/// in `;` need it, the others are the legacy names that may omit it.
pub const HTML5_ENTITIES: &str = "\
    AElig=c6 AElig;=c6 AMP=26 AMP;=26 Aacute=c1 Aacute;=c1 Abreve;=102 Acirc=c2 Acirc;=c2 Acy;=410 \
    Afr;=1d504 Agrave=c0 Agrave;=c0 Alpha;=391 Amacr;=100 And;=2a53 Aogon;=104 Aopf;=1d538 \
    ApplyFunction;=2061 Aring=c5 Aring;=c5 Ascr;=1d49c Assign;=2254 Atilde=c3 Atilde;=c3 Auml=c4 \
    Auml;=c4 Backslash;=2216 Barv;=2ae7 Barwed;=2306 Bcy;=411 Because;=2235 Bernoullis;=212c Beta;=392 \
    Bfr;=1d505 Bopf;=1d539 Breve;=2d8 Bscr;=212c Bumpeq;=224e CHcy;=427 COPY=a9 COPY;=a9 Cacute;=106 \
    Cap;=22d2 CapitalDifferentialD;=2145 Cayleys;=212d Ccaron;=10c Ccedil=c7 Ccedil;=c7 Ccirc;=108 \
    Cconint;=2230 Cdot;=10a Cedilla;=b8 CenterDot;=b7 Cfr;=212d Chi;=3a7 CircleDot;=2299 \
    CircleMinus;=2296 CirclePlus;=2295 CircleTimes;=2297 ClockwiseContourIntegral;=2232 \
    CloseCurlyDoubleQuote;=201d CloseCurlyQuote;=2019 Colon;=2237 Colone;=2a74 Congruent;=2261 \
    Conint;=222f ContourIntegral;=222e Copf;=2102 Coproduct;=2210 CounterClockwiseContourIntegral;=2233 \
    Cross;=2a2f Cscr;=1d49e Cup;=22d3 CupCap;=224d DD;=2145 DDotrahd;=2911 DJcy;=402 DScy;=405 \
    DZcy;=40f Dagger;=2021 Darr;=21a1 Dashv;=2ae4 Dcaron;=10e Dcy;=414 Del;=2207 Delta;=394 Dfr;=1d507 \
    DiacriticalAcute;=b4 DiacriticalDot;=2d9 DiacriticalDoubleAcute;=2dd DiacriticalGrave;=60 \
    DiacriticalTilde;=2dc Diamond;=22c4 DifferentialD;=2146 Dopf;=1d53b Dot;=a8 DotDot;=20dc \
    DotEqual;=2250 DoubleContourIntegral;=222f DoubleDot;=a8 DoubleDownArrow;=21d3 \
    DoubleLeftArrow;=21d0 DoubleLeftRightArrow;=21d4 DoubleLeftTee;=2ae4 DoubleLongLeftArrow;=27f8 \
    DoubleLongLeftRightArrow;=27fa DoubleLongRightArrow;=27f9 DoubleRightArrow;=21d2 \
    DoubleRightTee;=22a8 DoubleUpArrow;=21d1 DoubleUpDownArrow;=21d5 DoubleVerticalBar;=2225 \
    DownArrow;=2193 DownArrowBar;=2913 DownArrowUpArrow;=21f5 DownBreve;=311 DownLeftRightVector;=2950 \
    DownLeftTeeVector;=295e DownLeftVector;=21bd DownLeftVectorBar;=2956 DownRightTeeVector;=295f \
    DownRightVector;=21c1 DownRightVectorBar;=2957 DownTee;=22a4 DownTeeArrow;=21a7 Downarrow;=21d3 \
    Dscr;=1d49f Dstrok;=110 ENG;=14a ETH=d0 ETH;=d0 Eacute=c9 Eacute;=c9 Ecaron;=11a Ecirc=ca Ecirc;=ca \
    Ecy;=42d Edot;=116 Efr;=1d508 Egrave=c8 Egrave;=c8 Element;=2208 Emacr;=112 EmptySmallSquare;=25fb \
    EmptyVerySmallSquare;=25ab Eogon;=118 Eopf;=1d53c Epsilon;=395 Equal;=2a75 EqualTilde;=2242 \
    Equilibrium;=21cc Escr;=2130 Esim;=2a73 Eta;=397 Euml=cb Euml;=cb Exists;=2203 ExponentialE;=2147 \
    Fcy;=424 Ffr;=1d509 FilledSmallSquare;=25fc FilledVerySmallSquare;=25aa Fopf;=1d53d ForAll;=2200 \
    Fouriertrf;=2131 Fscr;=2131 GJcy;=403 GT=3e GT;=3e Gamma;=393 Gammad;=3dc Gbreve;=11e Gcedil;=122 \
    Gcirc;=11c Gcy;=413 Gdot;=120 Gfr;=1d50a Gg;=22d9 Gopf;=1d53e GreaterEqual;=2265 \
    GreaterEqualLess;=22db GreaterFullEqual;=2267 GreaterGreater;=2aa2 GreaterLess;=2277 \
    GreaterSlantEqual;=2a7e GreaterTilde;=2273 Gscr;=1d4a2 Gt;=226b HARDcy;=42a Hacek;=2c7 Hat;=5e \
    Hcirc;=124 Hfr;=210c HilbertSpace;=210b Hopf;=210d HorizontalLine;=2500 Hscr;=210b Hstrok;=126 \
    HumpDownHump;=224e HumpEqual;=224f IEcy;=415 IJlig;=132 IOcy;=401 Iacute=cd Iacute;=cd Icirc=ce \
    Icirc;=ce Icy;=418 Idot;=130 Ifr;=2111 Igrave=cc Igrave;=cc Im;=2111 Imacr;=12a ImaginaryI;=2148 \
    Implies;=21d2 Int;=222c Integral;=222b Intersection;=22c2 InvisibleComma;=2063 InvisibleTimes;=2062 \
    Iogon;=12e Iopf;=1d540 Iota;=399 Iscr;=2110 Itilde;=128 Iukcy;=406 Iuml=cf Iuml;=cf Jcirc;=134 \
    Jcy;=419 Jfr;=1d50d Jopf;=1d541 Jscr;=1d4a5 Jsercy;=408 Jukcy;=404 KHcy;=425 KJcy;=40c Kappa;=39a \
    Kcedil;=136 Kcy;=41a Kfr;=1d50e Kopf;=1d542 Kscr;=1d4a6 LJcy;=409 LT=3c LT;=3c Lacute;=139 \
    Lambda;=39b Lang;=27ea Laplacetrf;=2112 Larr;=219e Lcaron;=13d Lcedil;=13b Lcy;=41b \
    LeftAngleBracket;=27e8 LeftArrow;=2190 LeftArrowBar;=21e4 LeftArrowRightArrow;=21c6 \
    LeftCeiling;=2308 LeftDoubleBracket;=27e6 LeftDownTeeVector;=2961 LeftDownVector;=21c3 \
    LeftDownVectorBar;=2959 LeftFloor;=230a LeftRightArrow;=2194 LeftRightVector;=294e LeftTee;=22a3 \
    LeftTeeArrow;=21a4 LeftTeeVector;=295a LeftTriangle;=22b2 LeftTriangleBar;=29cf \
    LeftTriangleEqual;=22b4 LeftUpDownVector;=2951 LeftUpTeeVector;=2960 LeftUpVector;=21bf \
    LeftUpVectorBar;=2958 LeftVector;=21bc LeftVectorBar;=2952 Leftarrow;=21d0 Leftrightarrow;=21d4 \
    LessEqualGreater;=22da LessFullEqual;=2266 LessGreater;=2276 LessLess;=2aa1 LessSlantEqual;=2a7d \
    LessTilde;=2272 Lfr;=1d50f Ll;=22d8 Lleftarrow;=21da Lmidot;=13f LongLeftArrow;=27f5 \
    LongLeftRightArrow;=27f7 LongRightArrow;=27f6 Longleftarrow;=27f8 Longleftrightarrow;=27fa \
    Longrightarrow;=27f9 Lopf;=1d543 LowerLeftArrow;=2199 LowerRightArrow;=2198 Lscr;=2112 Lsh;=21b0 \
    Lstrok;=141 Lt;=226a Map;=2905 Mcy;=41c MediumSpace;=205f Mellintrf;=2133 Mfr;=1d510 \
    MinusPlus;=2213 Mopf;=1d544 Mscr;=2133 Mu;=39c NJcy;=40a Nacute;=143 Ncaron;=147 Ncedil;=145 \
    Ncy;=41d NegativeMediumSpace;=200b NegativeThickSpace;=200b NegativeThinSpace;=200b \
    NegativeVeryThinSpace;=200b NestedGreaterGreater;=226b NestedLessLess;=226a NewLine;=a Nfr;=1d511 \
    NoBreak;=2060 NonBreakingSpace;=a0 Nopf;=2115 Not;=2aec NotCongruent;=2262 NotCupCap;=226d \
    NotDoubleVerticalBar;=2226 NotElement;=2209 NotEqual;=2260 NotEqualTilde;=2242,338 NotExists;=2204 \
    NotGreater;=226f NotGreaterEqual;=2271 NotGreaterFullEqual;=2267,338 NotGreaterGreater;=226b,338 \
    NotGreaterLess;=2279 NotGreaterSlantEqual;=2a7e,338 NotGreaterTilde;=2275 NotHumpDownHump;=224e,338 \
    NotHumpEqual;=224f,338 NotLeftTriangle;=22ea NotLeftTriangleBar;=29cf,338 \
    NotLeftTriangleEqual;=22ec NotLess;=226e NotLessEqual;=2270 NotLessGreater;=2278 \
    NotLessLess;=226a,338 NotLessSlantEqual;=2a7d,338 NotLessTilde;=2274 \
    NotNestedGreaterGreater;=2aa2,338 NotNestedLessLess;=2aa1,338 NotPrecedes;=2280 \
    NotPrecedesEqual;=2aaf,338 NotPrecedesSlantEqual;=22e0 NotReverseElement;=220c \
    NotRightTriangle;=22eb NotRightTriangleBar;=29d0,338 NotRightTriangleEqual;=22ed \
    NotSquareSubset;=228f,338 NotSquareSubsetEqual;=22e2 NotSquareSuperset;=2290,338 \
    NotSquareSupersetEqual;=22e3 NotSubset;=2282,20d2 NotSubsetEqual;=2288 NotSucceeds;=2281 \
    NotSucceedsEqual;=2ab0,338 NotSucceedsSlantEqual;=22e1 NotSucceedsTilde;=227f,338 \
    NotSuperset;=2283,20d2 NotSupersetEqual;=2289 NotTilde;=2241 NotTildeEqual;=2244 \
    NotTildeFullEqual;=2247 NotTildeTilde;=2249 NotVerticalBar;=2224 Nscr;=1d4a9 Ntilde=d1 Ntilde;=d1 \
    Nu;=39d OElig;=152 Oacute=d3 Oacute;=d3 Ocirc=d4 Ocirc;=d4 Ocy;=41e Odblac;=150 Ofr;=1d512 \
    Ograve=d2 Ograve;=d2 Omacr;=14c Omega;=3a9 Omicron;=39f Oopf;=1d546 OpenCurlyDoubleQuote;=201c \
    OpenCurlyQuote;=2018 Or;=2a54 Oscr;=1d4aa Oslash=d8 Oslash;=d8 Otilde=d5 Otilde;=d5 Otimes;=2a37 \
    Ouml=d6 Ouml;=d6 OverBar;=203e OverBrace;=23de OverBracket;=23b4 OverParenthesis;=23dc \
    PartialD;=2202 Pcy;=41f Pfr;=1d513 Phi;=3a6 Pi;=3a0 PlusMinus;=b1 Poincareplane;=210c Popf;=2119 \
    Pr;=2abb Precedes;=227a PrecedesEqual;=2aaf PrecedesSlantEqual;=227c PrecedesTilde;=227e \
    Prime;=2033 Product;=220f Proportion;=2237 Proportional;=221d Pscr;=1d4ab Psi;=3a8 QUOT=22 QUOT;=22 \
    Qfr;=1d514 Qopf;=211a Qscr;=1d4ac RBarr;=2910 REG=ae REG;=ae Racute;=154 Rang;=27eb Rarr;=21a0 \
    Rarrtl;=2916 Rcaron;=158 Rcedil;=156 Rcy;=420 Re;=211c ReverseElement;=220b \
    ReverseEquilibrium;=21cb ReverseUpEquilibrium;=296f Rfr;=211c Rho;=3a1 RightAngleBracket;=27e9 \
    RightArrow;=2192 RightArrowBar;=21e5 RightArrowLeftArrow;=21c4 RightCeiling;=2309 \
    RightDoubleBracket;=27e7 RightDownTeeVector;=295d RightDownVector;=21c2 RightDownVectorBar;=2955 \
    RightFloor;=230b RightTee;=22a2 RightTeeArrow;=21a6 RightTeeVector;=295b RightTriangle;=22b3 \
    RightTriangleBar;=29d0 RightTriangleEqual;=22b5 RightUpDownVector;=294f RightUpTeeVector;=295c \
    RightUpVector;=21be RightUpVectorBar;=2954 RightVector;=21c0 RightVectorBar;=2953 Rightarrow;=21d2 \
    Ropf;=211d RoundImplies;=2970 Rrightarrow;=21db Rscr;=211b Rsh;=21b1 RuleDelayed;=29f4 SHCHcy;=429 \
    SHcy;=428 SOFTcy;=42c Sacute;=15a Sc;=2abc Scaron;=160 Scedil;=15e Scirc;=15c Scy;=421 Sfr;=1d516 \
    ShortDownArrow;=2193 ShortLeftArrow;=2190 ShortRightArrow;=2192 ShortUpArrow;=2191 Sigma;=3a3 \
    SmallCircle;=2218 Sopf;=1d54a Sqrt;=221a Square;=25a1 SquareIntersection;=2293 SquareSubset;=228f \
    SquareSubsetEqual;=2291 SquareSuperset;=2290 SquareSupersetEqual;=2292 SquareUnion;=2294 \
    Sscr;=1d4ae Star;=22c6 Sub;=22d0 Subset;=22d0 SubsetEqual;=2286 Succeeds;=227b SucceedsEqual;=2ab0 \
    SucceedsSlantEqual;=227d SucceedsTilde;=227f SuchThat;=220b Sum;=2211 Sup;=22d1 Superset;=2283 \
    SupersetEqual;=2287 Supset;=22d1 THORN=de THORN;=de TRADE;=2122 TSHcy;=40b TScy;=426 Tab;=9 \
    Tau;=3a4 Tcaron;=164 Tcedil;=162 Tcy;=422 Tfr;=1d517 Therefore;=2234 Theta;=398 \
    ThickSpace;=205f,200a ThinSpace;=2009 Tilde;=223c TildeEqual;=2243 TildeFullEqual;=2245 \
    TildeTilde;=2248 Topf;=1d54b TripleDot;=20db Tscr;=1d4af Tstrok;=166 Uacute=da Uacute;=da \
    Uarr;=219f Uarrocir;=2949 Ubrcy;=40e Ubreve;=16c Ucirc=db Ucirc;=db Ucy;=423 Udblac;=170 Ufr;=1d518 \
    Ugrave=d9 Ugrave;=d9 Umacr;=16a UnderBar;=5f UnderBrace;=23df UnderBracket;=23b5 \
    UnderParenthesis;=23dd Union;=22c3 UnionPlus;=228e Uogon;=172 Uopf;=1d54c UpArrow;=2191 \
    UpArrowBar;=2912 UpArrowDownArrow;=21c5 UpDownArrow;=2195 UpEquilibrium;=296e UpTee;=22a5 \
    UpTeeArrow;=21a5 Uparrow;=21d1 Updownarrow;=21d5 UpperLeftArrow;=2196 UpperRightArrow;=2197 \
    Upsi;=3d2 Upsilon;=3a5 Uring;=16e Uscr;=1d4b0 Utilde;=168 Uuml=dc Uuml;=dc VDash;=22ab Vbar;=2aeb \
    Vcy;=412 Vdash;=22a9 Vdashl;=2ae6 Vee;=22c1 Verbar;=2016 Vert;=2016 VerticalBar;=2223 \
    VerticalLine;=7c VerticalSeparator;=2758 VerticalTilde;=2240 VeryThinSpace;=200a Vfr;=1d519 \
    Vopf;=1d54d Vscr;=1d4b1 Vvdash;=22aa Wcirc;=174 Wedge;=22c0 Wfr;=1d51a Wopf;=1d54e Wscr;=1d4b2 \
    Xfr;=1d51b Xi;=39e Xopf;=1d54f Xscr;=1d4b3 YAcy;=42f YIcy;=407 YUcy;=42e Yacute=dd Yacute;=dd \
    Ycirc;=176 Ycy;=42b Yfr;=1d51c Yopf;=1d550 Yscr;=1d4b4 Yuml;=178 ZHcy;=416 Zacute;=179 Zcaron;=17d \
    Zcy;=417 Zdot;=17b ZeroWidthSpace;=200b Zeta;=396 Zfr;=2128 Zopf;=2124 Zscr;=1d4b5 aacute=e1 \
    aacute;=e1 abreve;=103 ac;=223e acE;=223e,333 acd;=223f acirc=e2 acirc;=e2 acute=b4 acute;=b4 \
    acy;=430 aelig=e6 aelig;=e6 af;=2061 afr;=1d51e agrave=e0 agrave;=e0 alefsym;=2135 aleph;=2135 \
    alpha;=3b1 amacr;=101 amalg;=2a3f amp=26 amp;=26 and;=2227 andand;=2a55 andd;=2a5c andslope;=2a58 \
    andv;=2a5a ang;=2220 ange;=29a4 angle;=2220 angmsd;=2221 angmsdaa;=29a8 angmsdab;=29a9 \
    angmsdac;=29aa angmsdad;=29ab angmsdae;=29ac angmsdaf;=29ad angmsdag;=29ae angmsdah;=29af \
    angrt;=221f angrtvb;=22be angrtvbd;=299d angsph;=2222 angst;=c5 angzarr;=237c aogon;=105 \
    aopf;=1d552 ap;=2248 apE;=2a70 apacir;=2a6f ape;=224a apid;=224b apos;=27 approx;=2248 \
    approxeq;=224a aring=e5 aring;=e5 ascr;=1d4b6 ast;=2a asymp;=2248 asympeq;=224d atilde=e3 \
    atilde;=e3 auml=e4 auml;=e4 awconint;=2233 awint;=2a11 bNot;=2aed backcong;=224c backepsilon;=3f6 \
    backprime;=2035 backsim;=223d backsimeq;=22cd barvee;=22bd barwed;=2305 barwedge;=2305 bbrk;=23b5 \
    bbrktbrk;=23b6 bcong;=224c bcy;=431 bdquo;=201e becaus;=2235 because;=2235 bemptyv;=29b0 bepsi;=3f6 \
    bernou;=212c beta;=3b2 beth;=2136 between;=226c bfr;=1d51f bigcap;=22c2 bigcirc;=25ef bigcup;=22c3 \
    bigodot;=2a00 bigoplus;=2a01 bigotimes;=2a02 bigsqcup;=2a06 bigstar;=2605 bigtriangledown;=25bd \
    bigtriangleup;=25b3 biguplus;=2a04 bigvee;=22c1 bigwedge;=22c0 bkarow;=290d blacklozenge;=29eb \
    blacksquare;=25aa blacktriangle;=25b4 blacktriangledown;=25be blacktriangleleft;=25c2 \
    blacktriangleright;=25b8 blank;=2423 blk12;=2592 blk14;=2591 blk34;=2593 block;=2588 bne;=3d,20e5 \
    bnequiv;=2261,20e5 bnot;=2310 bopf;=1d553 bot;=22a5 bottom;=22a5 bowtie;=22c8 boxDL;=2557 \
    boxDR;=2554 boxDl;=2556 boxDr;=2553 boxH;=2550 boxHD;=2566 boxHU;=2569 boxHd;=2564 boxHu;=2567 \
    boxUL;=255d boxUR;=255a boxUl;=255c boxUr;=2559 boxV;=2551 boxVH;=256c boxVL;=2563 boxVR;=2560 \
    boxVh;=256b boxVl;=2562 boxVr;=255f boxbox;=29c9 boxdL;=2555 boxdR;=2552 boxdl;=2510 boxdr;=250c \
    boxh;=2500 boxhD;=2565 boxhU;=2568 boxhd;=252c boxhu;=2534 boxminus;=229f boxplus;=229e \
    boxtimes;=22a0 boxuL;=255b boxuR;=2558 boxul;=2518 boxur;=2514 boxv;=2502 boxvH;=256a boxvL;=2561 \
    boxvR;=255e boxvh;=253c boxvl;=2524 boxvr;=251c bprime;=2035 breve;=2d8 brvbar=a6 brvbar;=a6 \
    bscr;=1d4b7 bsemi;=204f bsim;=223d bsime;=22cd bsol;=5c bsolb;=29c5 bsolhsub;=27c8 bull;=2022 \
    bullet;=2022 bump;=224e bumpE;=2aae bumpe;=224f bumpeq;=224f cacute;=107 cap;=2229 capand;=2a44 \
    capbrcup;=2a49 capcap;=2a4b capcup;=2a47 capdot;=2a40 caps;=2229,fe00 caret;=2041 caron;=2c7 \
    ccaps;=2a4d ccaron;=10d ccedil=e7 ccedil;=e7 ccirc;=109 ccups;=2a4c ccupssm;=2a50 cdot;=10b \
    cedil=b8 cedil;=b8 cemptyv;=29b2 cent=a2 cent;=a2 centerdot;=b7 cfr;=1d520 chcy;=447 check;=2713 \
    checkmark;=2713 chi;=3c7 cir;=25cb cirE;=29c3 circ;=2c6 circeq;=2257 circlearrowleft;=21ba \
    circlearrowright;=21bb circledR;=ae circledS;=24c8 circledast;=229b circledcirc;=229a \
    circleddash;=229d cire;=2257 cirfnint;=2a10 cirmid;=2aef cirscir;=29c2 clubs;=2663 clubsuit;=2663 \
    colon;=3a colone;=2254 coloneq;=2254 comma;=2c commat;=40 comp;=2201 compfn;=2218 complement;=2201 \
    complexes;=2102 cong;=2245 congdot;=2a6d conint;=222e copf;=1d554 coprod;=2210 copy=a9 copy;=a9 \
    copysr;=2117 crarr;=21b5 cross;=2717 cscr;=1d4b8 csub;=2acf csube;=2ad1 csup;=2ad0 csupe;=2ad2 \
    ctdot;=22ef cudarrl;=2938 cudarrr;=2935 cuepr;=22de cuesc;=22df cularr;=21b6 cularrp;=293d \
    cup;=222a cupbrcap;=2a48 cupcap;=2a46 cupcup;=2a4a cupdot;=228d cupor;=2a45 cups;=222a,fe00 \
    curarr;=21b7 curarrm;=293c curlyeqprec;=22de curlyeqsucc;=22df curlyvee;=22ce curlywedge;=22cf \
    curren=a4 curren;=a4 curvearrowleft;=21b6 curvearrowright;=21b7 cuvee;=22ce cuwed;=22cf \
    cwconint;=2232 cwint;=2231 cylcty;=232d dArr;=21d3 dHar;=2965 dagger;=2020 daleth;=2138 darr;=2193 \
    dash;=2010 dashv;=22a3 dbkarow;=290f dblac;=2dd dcaron;=10f dcy;=434 dd;=2146 ddagger;=2021 \
    ddarr;=21ca ddotseq;=2a77 deg=b0 deg;=b0 delta;=3b4 demptyv;=29b1 dfisht;=297f dfr;=1d521 \
    dharl;=21c3 dharr;=21c2 diam;=22c4 diamond;=22c4 diamondsuit;=2666 diams;=2666 die;=a8 digamma;=3dd \
    disin;=22f2 div;=f7 divide=f7 divide;=f7 divideontimes;=22c7 divonx;=22c7 djcy;=452 dlcorn;=231e \
    dlcrop;=230d dollar;=24 dopf;=1d555 dot;=2d9 doteq;=2250 doteqdot;=2251 dotminus;=2238 \
    dotplus;=2214 dotsquare;=22a1 doublebarwedge;=2306 downarrow;=2193 downdownarrows;=21ca \
    downharpoonleft;=21c3 downharpoonright;=21c2 drbkarow;=2910 drcorn;=231f drcrop;=230c dscr;=1d4b9 \
    dscy;=455 dsol;=29f6 dstrok;=111 dtdot;=22f1 dtri;=25bf dtrif;=25be duarr;=21f5 duhar;=296f \
    dwangle;=29a6 dzcy;=45f dzigrarr;=27ff eDDot;=2a77 eDot;=2251 eacute=e9 eacute;=e9 easter;=2a6e \
    ecaron;=11b ecir;=2256 ecirc=ea ecirc;=ea ecolon;=2255 ecy;=44d edot;=117 ee;=2147 efDot;=2252 \
    efr;=1d522 eg;=2a9a egrave=e8 egrave;=e8 egs;=2a96 egsdot;=2a98 el;=2a99 elinters;=23e7 ell;=2113 \
    els;=2a95 elsdot;=2a97 emacr;=113 empty;=2205 emptyset;=2205 emptyv;=2205 emsp13;=2004 emsp14;=2005 \
    emsp;=2003 eng;=14b ensp;=2002 eogon;=119 eopf;=1d556 epar;=22d5 eparsl;=29e3 eplus;=2a71 epsi;=3b5 \
    epsilon;=3b5 epsiv;=3f5 eqcirc;=2256 eqcolon;=2255 eqsim;=2242 eqslantgtr;=2a96 eqslantless;=2a95 \
    equals;=3d equest;=225f equiv;=2261 equivDD;=2a78 eqvparsl;=29e5 erDot;=2253 erarr;=2971 escr;=212f \
    esdot;=2250 esim;=2242 eta;=3b7 eth=f0 eth;=f0 euml=eb euml;=eb euro;=20ac excl;=21 exist;=2203 \
    expectation;=2130 exponentiale;=2147 fallingdotseq;=2252 fcy;=444 female;=2640 ffilig;=fb03 \
    fflig;=fb00 ffllig;=fb04 ffr;=1d523 filig;=fb01 fjlig;=66,6a flat;=266d fllig;=fb02 fltns;=25b1 \
    fnof;=192 fopf;=1d557 forall;=2200 fork;=22d4 forkv;=2ad9 fpartint;=2a0d frac12=bd frac12;=bd \
    frac13;=2153 frac14=bc frac14;=bc frac15;=2155 frac16;=2159 frac18;=215b frac23;=2154 frac25;=2156 \
    frac34=be frac34;=be frac35;=2157 frac38;=215c frac45;=2158 frac56;=215a frac58;=215d frac78;=215e \
    frasl;=2044 frown;=2322 fscr;=1d4bb gE;=2267 gEl;=2a8c gacute;=1f5 gamma;=3b3 gammad;=3dd gap;=2a86 \
    gbreve;=11f gcirc;=11d gcy;=433 gdot;=121 ge;=2265 gel;=22db geq;=2265 geqq;=2267 geqslant;=2a7e \
    ges;=2a7e gescc;=2aa9 gesdot;=2a80 gesdoto;=2a82 gesdotol;=2a84 gesl;=22db,fe00 gesles;=2a94 \
    gfr;=1d524 gg;=226b ggg;=22d9 gimel;=2137 gjcy;=453 gl;=2277 glE;=2a92 gla;=2aa5 glj;=2aa4 \
    gnE;=2269 gnap;=2a8a gnapprox;=2a8a gne;=2a88 gneq;=2a88 gneqq;=2269 gnsim;=22e7 gopf;=1d558 \
    grave;=60 gscr;=210a gsim;=2273 gsime;=2a8e gsiml;=2a90 gt=3e gt;=3e gtcc;=2aa7 gtcir;=2a7a \
    gtdot;=22d7 gtlPar;=2995 gtquest;=2a7c gtrapprox;=2a86 gtrarr;=2978 gtrdot;=22d7 gtreqless;=22db \
    gtreqqless;=2a8c gtrless;=2277 gtrsim;=2273 gvertneqq;=2269,fe00 gvnE;=2269,fe00 hArr;=21d4 \
    hairsp;=200a half;=bd hamilt;=210b hardcy;=44a harr;=2194 harrcir;=2948 harrw;=21ad hbar;=210f \
    hcirc;=125 hearts;=2665 heartsuit;=2665 hellip;=2026 hercon;=22b9 hfr;=1d525 hksearow;=2925 \
    hkswarow;=2926 hoarr;=21ff homtht;=223b hookleftarrow;=21a9 hookrightarrow;=21aa hopf;=1d559 \
    horbar;=2015 hscr;=1d4bd hslash;=210f hstrok;=127 hybull;=2043 hyphen;=2010 iacute=ed iacute;=ed \
    ic;=2063 icirc=ee icirc;=ee icy;=438 iecy;=435 iexcl=a1 iexcl;=a1 iff;=21d4 ifr;=1d526 igrave=ec \
    igrave;=ec ii;=2148 iiiint;=2a0c iiint;=222d iinfin;=29dc iiota;=2129 ijlig;=133 imacr;=12b \
    image;=2111 imagline;=2110 imagpart;=2111 imath;=131 imof;=22b7 imped;=1b5 in;=2208 incare;=2105 \
    infin;=221e infintie;=29dd inodot;=131 int;=222b intcal;=22ba integers;=2124 intercal;=22ba \
    intlarhk;=2a17 intprod;=2a3c iocy;=451 iogon;=12f iopf;=1d55a iota;=3b9 iprod;=2a3c iquest=bf \
    iquest;=bf iscr;=1d4be isin;=2208 isinE;=22f9 isindot;=22f5 isins;=22f4 isinsv;=22f3 isinv;=2208 \
    it;=2062 itilde;=129 iukcy;=456 iuml=ef iuml;=ef jcirc;=135 jcy;=439 jfr;=1d527 jmath;=237 \
    jopf;=1d55b jscr;=1d4bf jsercy;=458 jukcy;=454 kappa;=3ba kappav;=3f0 kcedil;=137 kcy;=43a \
    kfr;=1d528 kgreen;=138 khcy;=445 kjcy;=45c kopf;=1d55c kscr;=1d4c0 lAarr;=21da lArr;=21d0 \
    lAtail;=291b lBarr;=290e lE;=2266 lEg;=2a8b lHar;=2962 lacute;=13a laemptyv;=29b4 lagran;=2112 \
    lambda;=3bb lang;=27e8 langd;=2991 langle;=27e8 lap;=2a85 laquo=ab laquo;=ab larr;=2190 larrb;=21e4 \
    larrbfs;=291f larrfs;=291d larrhk;=21a9 larrlp;=21ab larrpl;=2939 larrsim;=2973 larrtl;=21a2 \
    lat;=2aab latail;=2919 late;=2aad lates;=2aad,fe00 lbarr;=290c lbbrk;=2772 lbrace;=7b lbrack;=5b \
    lbrke;=298b lbrksld;=298f lbrkslu;=298d lcaron;=13e lcedil;=13c lceil;=2308 lcub;=7b lcy;=43b \
    ldca;=2936 ldquo;=201c ldquor;=201e ldrdhar;=2967 ldrushar;=294b ldsh;=21b2 le;=2264 \
    leftarrow;=2190 leftarrowtail;=21a2 leftharpoondown;=21bd leftharpoonup;=21bc leftleftarrows;=21c7 \
    leftrightarrow;=2194 leftrightarrows;=21c6 leftrightharpoons;=21cb leftrightsquigarrow;=21ad \
    leftthreetimes;=22cb leg;=22da leq;=2264 leqq;=2266 leqslant;=2a7d les;=2a7d lescc;=2aa8 \
    lesdot;=2a7f lesdoto;=2a81 lesdotor;=2a83 lesg;=22da,fe00 lesges;=2a93 lessapprox;=2a85 \
    lessdot;=22d6 lesseqgtr;=22da lesseqqgtr;=2a8b lessgtr;=2276 lesssim;=2272 lfisht;=297c \
    lfloor;=230a lfr;=1d529 lg;=2276 lgE;=2a91 lhard;=21bd lharu;=21bc lharul;=296a lhblk;=2584 \
    ljcy;=459 ll;=226a llarr;=21c7 llcorner;=231e llhard;=296b lltri;=25fa lmidot;=140 lmoust;=23b0 \
    lmoustache;=23b0 lnE;=2268 lnap;=2a89 lnapprox;=2a89 lne;=2a87 lneq;=2a87 lneqq;=2268 lnsim;=22e6 \
    loang;=27ec loarr;=21fd lobrk;=27e6 longleftarrow;=27f5 longleftrightarrow;=27f7 longmapsto;=27fc \
    longrightarrow;=27f6 looparrowleft;=21ab looparrowright;=21ac lopar;=2985 lopf;=1d55d loplus;=2a2d \
    lotimes;=2a34 lowast;=2217 lowbar;=5f loz;=25ca lozenge;=25ca lozf;=29eb lpar;=28 lparlt;=2993 \
    lrarr;=21c6 lrcorner;=231f lrhar;=21cb lrhard;=296d lrm;=200e lrtri;=22bf lsaquo;=2039 lscr;=1d4c1 \
    lsh;=21b0 lsim;=2272 lsime;=2a8d lsimg;=2a8f lsqb;=5b lsquo;=2018 lsquor;=201a lstrok;=142 lt=3c \
    lt;=3c ltcc;=2aa6 ltcir;=2a79 ltdot;=22d6 lthree;=22cb ltimes;=22c9 ltlarr;=2976 ltquest;=2a7b \
    ltrPar;=2996 ltri;=25c3 ltrie;=22b4 ltrif;=25c2 lurdshar;=294a luruhar;=2966 lvertneqq;=2268,fe00 \
    lvnE;=2268,fe00 mDDot;=223a macr=af macr;=af male;=2642 malt;=2720 maltese;=2720 map;=21a6 \
    mapsto;=21a6 mapstodown;=21a7 mapstoleft;=21a4 mapstoup;=21a5 marker;=25ae mcomma;=2a29 mcy;=43c \
    mdash;=2014 measuredangle;=2221 mfr;=1d52a mho;=2127 micro=b5 micro;=b5 mid;=2223 midast;=2a \
    midcir;=2af0 middot=b7 middot;=b7 minus;=2212 minusb;=229f minusd;=2238 minusdu;=2a2a mlcp;=2adb \
    mldr;=2026 mnplus;=2213 models;=22a7 mopf;=1d55e mp;=2213 mscr;=1d4c2 mstpos;=223e mu;=3bc \
    multimap;=22b8 mumap;=22b8 nGg;=22d9,338 nGt;=226b,20d2 nGtv;=226b,338 nLeftarrow;=21cd \
    nLeftrightarrow;=21ce nLl;=22d8,338 nLt;=226a,20d2 nLtv;=226a,338 nRightarrow;=21cf nVDash;=22af \
    nVdash;=22ae nabla;=2207 nacute;=144 nang;=2220,20d2 nap;=2249 napE;=2a70,338 napid;=224b,338 \
    napos;=149 napprox;=2249 natur;=266e natural;=266e naturals;=2115 nbsp=a0 nbsp;=a0 nbump;=224e,338 \
    nbumpe;=224f,338 ncap;=2a43 ncaron;=148 ncedil;=146 ncong;=2247 ncongdot;=2a6d,338 ncup;=2a42 \
    ncy;=43d ndash;=2013 ne;=2260 neArr;=21d7 nearhk;=2924 nearr;=2197 nearrow;=2197 nedot;=2250,338 \
    nequiv;=2262 nesear;=2928 nesim;=2242,338 nexist;=2204 nexists;=2204 nfr;=1d52b ngE;=2267,338 \
    nge;=2271 ngeq;=2271 ngeqq;=2267,338 ngeqslant;=2a7e,338 nges;=2a7e,338 ngsim;=2275 ngt;=226f \
    ngtr;=226f nhArr;=21ce nharr;=21ae nhpar;=2af2 ni;=220b nis;=22fc nisd;=22fa niv;=220b njcy;=45a \
    nlArr;=21cd nlE;=2266,338 nlarr;=219a nldr;=2025 nle;=2270 nleftarrow;=219a nleftrightarrow;=21ae \
    nleq;=2270 nleqq;=2266,338 nleqslant;=2a7d,338 nles;=2a7d,338 nless;=226e nlsim;=2274 nlt;=226e \
    nltri;=22ea nltrie;=22ec nmid;=2224 nopf;=1d55f not=ac not;=ac notin;=2209 notinE;=22f9,338 \
    notindot;=22f5,338 notinva;=2209 notinvb;=22f7 notinvc;=22f6 notni;=220c notniva;=220c \
    notnivb;=22fe notnivc;=22fd npar;=2226 nparallel;=2226 nparsl;=2afd,20e5 npart;=2202,338 \
    npolint;=2a14 npr;=2280 nprcue;=22e0 npre;=2aaf,338 nprec;=2280 npreceq;=2aaf,338 nrArr;=21cf \
    nrarr;=219b nrarrc;=2933,338 nrarrw;=219d,338 nrightarrow;=219b nrtri;=22eb nrtrie;=22ed nsc;=2281 \
    nsccue;=22e1 nsce;=2ab0,338 nscr;=1d4c3 nshortmid;=2224 nshortparallel;=2226 nsim;=2241 nsime;=2244 \
    nsimeq;=2244 nsmid;=2224 nspar;=2226 nsqsube;=22e2 nsqsupe;=22e3 nsub;=2284 nsubE;=2ac5,338 \
    nsube;=2288 nsubset;=2282,20d2 nsubseteq;=2288 nsubseteqq;=2ac5,338 nsucc;=2281 nsucceq;=2ab0,338 \
    nsup;=2285 nsupE;=2ac6,338 nsupe;=2289 nsupset;=2283,20d2 nsupseteq;=2289 nsupseteqq;=2ac6,338 \
    ntgl;=2279 ntilde=f1 ntilde;=f1 ntlg;=2278 ntriangleleft;=22ea ntrianglelefteq;=22ec \
    ntriangleright;=22eb ntrianglerighteq;=22ed nu;=3bd num;=23 numero;=2116 numsp;=2007 nvDash;=22ad \
    nvHarr;=2904 nvap;=224d,20d2 nvdash;=22ac nvge;=2265,20d2 nvgt;=3e,20d2 nvinfin;=29de nvlArr;=2902 \
    nvle;=2264,20d2 nvlt;=3c,20d2 nvltrie;=22b4,20d2 nvrArr;=2903 nvrtrie;=22b5,20d2 nvsim;=223c,20d2 \
    nwArr;=21d6 nwarhk;=2923 nwarr;=2196 nwarrow;=2196 nwnear;=2927 oS;=24c8 oacute=f3 oacute;=f3 \
    oast;=229b ocir;=229a ocirc=f4 ocirc;=f4 ocy;=43e odash;=229d odblac;=151 odiv;=2a38 odot;=2299 \
    odsold;=29bc oelig;=153 ofcir;=29bf ofr;=1d52c ogon;=2db ograve=f2 ograve;=f2 ogt;=29c1 ohbar;=29b5 \
    ohm;=3a9 oint;=222e olarr;=21ba olcir;=29be olcross;=29bb oline;=203e olt;=29c0 omacr;=14d \
    omega;=3c9 omicron;=3bf omid;=29b6 ominus;=2296 oopf;=1d560 opar;=29b7 operp;=29b9 oplus;=2295 \
    or;=2228 orarr;=21bb ord;=2a5d order;=2134 orderof;=2134 ordf=aa ordf;=aa ordm=ba ordm;=ba \
    origof;=22b6 oror;=2a56 orslope;=2a57 orv;=2a5b oscr;=2134 oslash=f8 oslash;=f8 osol;=2298 \
    otilde=f5 otilde;=f5 otimes;=2297 otimesas;=2a36 ouml=f6 ouml;=f6 ovbar;=233d par;=2225 para=b6 \
    para;=b6 parallel;=2225 parsim;=2af3 parsl;=2afd part;=2202 pcy;=43f percnt;=25 period;=2e \
    permil;=2030 perp;=22a5 pertenk;=2031 pfr;=1d52d phi;=3c6 phiv;=3d5 phmmat;=2133 phone;=260e \
    pi;=3c0 pitchfork;=22d4 piv;=3d6 planck;=210f planckh;=210e plankv;=210f plus;=2b plusacir;=2a23 \
    plusb;=229e pluscir;=2a22 plusdo;=2214 plusdu;=2a25 pluse;=2a72 plusmn=b1 plusmn;=b1 plussim;=2a26 \
    plustwo;=2a27 pm;=b1 pointint;=2a15 popf;=1d561 pound=a3 pound;=a3 pr;=227a prE;=2ab3 prap;=2ab7 \
    prcue;=227c pre;=2aaf prec;=227a precapprox;=2ab7 preccurlyeq;=227c preceq;=2aaf precnapprox;=2ab9 \
    precneqq;=2ab5 precnsim;=22e8 precsim;=227e prime;=2032 primes;=2119 prnE;=2ab5 prnap;=2ab9 \
    prnsim;=22e8 prod;=220f profalar;=232e profline;=2312 profsurf;=2313 prop;=221d propto;=221d \
    prsim;=227e prurel;=22b0 pscr;=1d4c5 psi;=3c8 puncsp;=2008 qfr;=1d52e qint;=2a0c qopf;=1d562 \
    qprime;=2057 qscr;=1d4c6 quaternions;=210d quatint;=2a16 quest;=3f questeq;=225f quot=22 quot;=22 \
    rAarr;=21db rArr;=21d2 rAtail;=291c rBarr;=290f rHar;=2964 race;=223d,331 racute;=155 radic;=221a \
    raemptyv;=29b3 rang;=27e9 rangd;=2992 range;=29a5 rangle;=27e9 raquo=bb raquo;=bb rarr;=2192 \
    rarrap;=2975 rarrb;=21e5 rarrbfs;=2920 rarrc;=2933 rarrfs;=291e rarrhk;=21aa rarrlp;=21ac \
    rarrpl;=2945 rarrsim;=2974 rarrtl;=21a3 rarrw;=219d ratail;=291a ratio;=2236 rationals;=211a \
    rbarr;=290d rbbrk;=2773 rbrace;=7d rbrack;=5d rbrke;=298c rbrksld;=298e rbrkslu;=2990 rcaron;=159 \
    rcedil;=157 rceil;=2309 rcub;=7d rcy;=440 rdca;=2937 rdldhar;=2969 rdquo;=201d rdquor;=201d \
    rdsh;=21b3 real;=211c realine;=211b realpart;=211c reals;=211d rect;=25ad reg=ae reg;=ae \
    rfisht;=297d rfloor;=230b rfr;=1d52f rhard;=21c1 rharu;=21c0 rharul;=296c rho;=3c1 rhov;=3f1 \
    rightarrow;=2192 rightarrowtail;=21a3 rightharpoondown;=21c1 rightharpoonup;=21c0 \
    rightleftarrows;=21c4 rightleftharpoons;=21cc rightrightarrows;=21c9 rightsquigarrow;=219d \
    rightthreetimes;=22cc ring;=2da risingdotseq;=2253 rlarr;=21c4 rlhar;=21cc rlm;=200f rmoust;=23b1 \
    rmoustache;=23b1 rnmid;=2aee roang;=27ed roarr;=21fe robrk;=27e7 ropar;=2986 ropf;=1d563 \
    roplus;=2a2e rotimes;=2a35 rpar;=29 rpargt;=2994 rppolint;=2a12 rrarr;=21c9 rsaquo;=203a \
    rscr;=1d4c7 rsh;=21b1 rsqb;=5d rsquo;=2019 rsquor;=2019 rthree;=22cc rtimes;=22ca rtri;=25b9 \
    rtrie;=22b5 rtrif;=25b8 rtriltri;=29ce ruluhar;=2968 rx;=211e sacute;=15b sbquo;=201a sc;=227b \
    scE;=2ab4 scap;=2ab8 scaron;=161 sccue;=227d sce;=2ab0 scedil;=15f scirc;=15d scnE;=2ab6 \
    scnap;=2aba scnsim;=22e9 scpolint;=2a13 scsim;=227f scy;=441 sdot;=22c5 sdotb;=22a1 sdote;=2a66 \
    seArr;=21d8 searhk;=2925 searr;=2198 searrow;=2198 sect=a7 sect;=a7 semi;=3b seswar;=2929 \
    setminus;=2216 setmn;=2216 sext;=2736 sfr;=1d530 sfrown;=2322 sharp;=266f shchcy;=449 shcy;=448 \
    shortmid;=2223 shortparallel;=2225 shy=ad shy;=ad sigma;=3c3 sigmaf;=3c2 sigmav;=3c2 sim;=223c \
    simdot;=2a6a sime;=2243 simeq;=2243 simg;=2a9e simgE;=2aa0 siml;=2a9d simlE;=2a9f simne;=2246 \
    simplus;=2a24 simrarr;=2972 slarr;=2190 smallsetminus;=2216 smashp;=2a33 smeparsl;=29e4 smid;=2223 \
    smile;=2323 smt;=2aaa smte;=2aac smtes;=2aac,fe00 softcy;=44c sol;=2f solb;=29c4 solbar;=233f \
    sopf;=1d564 spades;=2660 spadesuit;=2660 spar;=2225 sqcap;=2293 sqcaps;=2293,fe00 sqcup;=2294 \
    sqcups;=2294,fe00 sqsub;=228f sqsube;=2291 sqsubset;=228f sqsubseteq;=2291 sqsup;=2290 sqsupe;=2292 \
    sqsupset;=2290 sqsupseteq;=2292 squ;=25a1 square;=25a1 squarf;=25aa squf;=25aa srarr;=2192 \
    sscr;=1d4c8 ssetmn;=2216 ssmile;=2323 sstarf;=22c6 star;=2606 starf;=2605 straightepsilon;=3f5 \
    straightphi;=3d5 strns;=af sub;=2282 subE;=2ac5 subdot;=2abd sube;=2286 subedot;=2ac3 submult;=2ac1 \
    subnE;=2acb subne;=228a subplus;=2abf subrarr;=2979 subset;=2282 subseteq;=2286 subseteqq;=2ac5 \
    subsetneq;=228a subsetneqq;=2acb subsim;=2ac7 subsub;=2ad5 subsup;=2ad3 succ;=227b succapprox;=2ab8 \
    succcurlyeq;=227d succeq;=2ab0 succnapprox;=2aba succneqq;=2ab6 succnsim;=22e9 succsim;=227f \
    sum;=2211 sung;=266a sup1=b9 sup1;=b9 sup2=b2 sup2;=b2 sup3=b3 sup3;=b3 sup;=2283 supE;=2ac6 \
    supdot;=2abe supdsub;=2ad8 supe;=2287 supedot;=2ac4 suphsol;=27c9 suphsub;=2ad7 suplarr;=297b \
    supmult;=2ac2 supnE;=2acc supne;=228b supplus;=2ac0 supset;=2283 supseteq;=2287 supseteqq;=2ac6 \
    supsetneq;=228b supsetneqq;=2acc supsim;=2ac8 supsub;=2ad4 supsup;=2ad6 swArr;=21d9 swarhk;=2926 \
    swarr;=2199 swarrow;=2199 swnwar;=292a szlig=df szlig;=df target;=2316 tau;=3c4 tbrk;=23b4 \
    tcaron;=165 tcedil;=163 tcy;=442 tdot;=20db telrec;=2315 tfr;=1d531 there4;=2234 therefore;=2234 \
    theta;=3b8 thetasym;=3d1 thetav;=3d1 thickapprox;=2248 thicksim;=223c thinsp;=2009 thkap;=2248 \
    thksim;=223c thorn=fe thorn;=fe tilde;=2dc times=d7 times;=d7 timesb;=22a0 timesbar;=2a31 \
    timesd;=2a30 tint;=222d toea;=2928 top;=22a4 topbot;=2336 topcir;=2af1 topf;=1d565 topfork;=2ada \
    tosa;=2929 tprime;=2034 trade;=2122 triangle;=25b5 triangledown;=25bf triangleleft;=25c3 \
    trianglelefteq;=22b4 triangleq;=225c triangleright;=25b9 trianglerighteq;=22b5 tridot;=25ec \
    trie;=225c triminus;=2a3a triplus;=2a39 trisb;=29cd tritime;=2a3b trpezium;=23e2 tscr;=1d4c9 \
    tscy;=446 tshcy;=45b tstrok;=167 twixt;=226c twoheadleftarrow;=219e twoheadrightarrow;=21a0 \
    uArr;=21d1 uHar;=2963 uacute=fa uacute;=fa uarr;=2191 ubrcy;=45e ubreve;=16d ucirc=fb ucirc;=fb \
    ucy;=443 udarr;=21c5 udblac;=171 udhar;=296e ufisht;=297e ufr;=1d532 ugrave=f9 ugrave;=f9 \
    uharl;=21bf uharr;=21be uhblk;=2580 ulcorn;=231c ulcorner;=231c ulcrop;=230f ultri;=25f8 umacr;=16b \
    uml=a8 uml;=a8 uogon;=173 uopf;=1d566 uparrow;=2191 updownarrow;=2195 upharpoonleft;=21bf \
    upharpoonright;=21be uplus;=228e upsi;=3c5 upsih;=3d2 upsilon;=3c5 upuparrows;=21c8 urcorn;=231d \
    urcorner;=231d urcrop;=230e uring;=16f urtri;=25f9 uscr;=1d4ca utdot;=22f0 utilde;=169 utri;=25b5 \
    utrif;=25b4 uuarr;=21c8 uuml=fc uuml;=fc uwangle;=29a7 vArr;=21d5 vBar;=2ae8 vBarv;=2ae9 \
    vDash;=22a8 vangrt;=299c varepsilon;=3f5 varkappa;=3f0 varnothing;=2205 varphi;=3d5 varpi;=3d6 \
    varpropto;=221d varr;=2195 varrho;=3f1 varsigma;=3c2 varsubsetneq;=228a,fe00 \
    varsubsetneqq;=2acb,fe00 varsupsetneq;=228b,fe00 varsupsetneqq;=2acc,fe00 vartheta;=3d1 \
    vartriangleleft;=22b2 vartriangleright;=22b3 vcy;=432 vdash;=22a2 vee;=2228 veebar;=22bb \
    veeeq;=225a vellip;=22ee verbar;=7c vert;=7c vfr;=1d533 vltri;=22b2 vnsub;=2282,20d2 \
    vnsup;=2283,20d2 vopf;=1d567 vprop;=221d vrtri;=22b3 vscr;=1d4cb vsubnE;=2acb,fe00 \
    vsubne;=228a,fe00 vsupnE;=2acc,fe00 vsupne;=228b,fe00 vzigzag;=299a wcirc;=175 wedbar;=2a5f \
    wedge;=2227 wedgeq;=2259 weierp;=2118 wfr;=1d534 wopf;=1d568 wp;=2118 wr;=2240 wreath;=2240 \
    wscr;=1d4cc xcap;=22c2 xcirc;=25ef xcup;=22c3 xdtri;=25bd xfr;=1d535 xhArr;=27fa xharr;=27f7 \
    xi;=3be xlArr;=27f8 xlarr;=27f5 xmap;=27fc xnis;=22fb xodot;=2a00 xopf;=1d569 xoplus;=2a01 \
    xotime;=2a02 xrArr;=27f9 xrarr;=27f6 xscr;=1d4cd xsqcup;=2a06 xuplus;=2a04 xutri;=25b3 xvee;=22c1 \
    xwedge;=22c0 yacute=fd yacute;=fd yacy;=44f ycirc;=177 ycy;=44b yen=a5 yen;=a5 yfr;=1d536 yicy;=457 \
    yopf;=1d56a yscr;=1d4ce yucy;=44e yuml=ff yuml;=ff zacute;=17a zcaron;=17e zcy;=437 zdot;=17c \
    zeetrf;=2128 zeta;=3b6 zfr;=1d537 zhcy;=436 zigrarr;=21dd zopf;=1d56b zscr;=1d4cf zwj;=200d \
    zwnj;=200c \
";

/// `ftfy.chardata.WIDTH_MAP`: fullwidth/halfwidth forms -> NFKC.
pub const WIDTH_MAP: [(char, &str); 226] = [
    ('\u{3000}', " "),
    ('\u{ff01}', "!"),
    ('\u{ff02}', "\""),
    ('\u{ff03}', "#"),
    ('\u{ff04}', "$"),
    ('\u{ff05}', "%"),
    ('\u{ff06}', "&"),
    ('\u{ff07}', "'"),
    ('\u{ff08}', "("),
    ('\u{ff09}', ")"),
    ('\u{ff0a}', "*"),
    ('\u{ff0b}', "+"),
    ('\u{ff0c}', ","),
    ('\u{ff0d}', "-"),
    ('\u{ff0e}', "."),
    ('\u{ff0f}', "/"),
    ('\u{ff10}', "0"),
    ('\u{ff11}', "1"),
    ('\u{ff12}', "2"),
    ('\u{ff13}', "3"),
    ('\u{ff14}', "4"),
    ('\u{ff15}', "5"),
    ('\u{ff16}', "6"),
    ('\u{ff17}', "7"),
    ('\u{ff18}', "8"),
    ('\u{ff19}', "9"),
    ('\u{ff1a}', ":"),
    ('\u{ff1b}', ";"),
    ('\u{ff1c}', "<"),
    ('\u{ff1d}', "="),
    ('\u{ff1e}', ">"),
    ('\u{ff1f}', "?"),
    ('\u{ff20}', "@"),
    ('\u{ff21}', "A"),
    ('\u{ff22}', "B"),
    ('\u{ff23}', "C"),
    ('\u{ff24}', "D"),
    ('\u{ff25}', "E"),
    ('\u{ff26}', "F"),
    ('\u{ff27}', "G"),
    ('\u{ff28}', "H"),
    ('\u{ff29}', "I"),
    ('\u{ff2a}', "J"),
    ('\u{ff2b}', "K"),
    ('\u{ff2c}', "L"),
    ('\u{ff2d}', "M"),
    ('\u{ff2e}', "N"),
    ('\u{ff2f}', "O"),
    ('\u{ff30}', "P"),
    ('\u{ff31}', "Q"),
    ('\u{ff32}', "R"),
    ('\u{ff33}', "S"),
    ('\u{ff34}', "T"),
    ('\u{ff35}', "U"),
    ('\u{ff36}', "V"),
    ('\u{ff37}', "W"),
    ('\u{ff38}', "X"),
    ('\u{ff39}', "Y"),
    ('\u{ff3a}', "Z"),
    ('\u{ff3b}', "["),
    ('\u{ff3c}', "\\"),
    ('\u{ff3d}', "]"),
    ('\u{ff3e}', "^"),
    ('\u{ff3f}', "_"),
    ('\u{ff40}', "`"),
    ('\u{ff41}', "a"),
    ('\u{ff42}', "b"),
    ('\u{ff43}', "c"),
    ('\u{ff44}', "d"),
    ('\u{ff45}', "e"),
    ('\u{ff46}', "f"),
    ('\u{ff47}', "g"),
    ('\u{ff48}', "h"),
    ('\u{ff49}', "i"),
    ('\u{ff4a}', "j"),
    ('\u{ff4b}', "k"),
    ('\u{ff4c}', "l"),
    ('\u{ff4d}', "m"),
    ('\u{ff4e}', "n"),
    ('\u{ff4f}', "o"),
    ('\u{ff50}', "p"),
    ('\u{ff51}', "q"),
    ('\u{ff52}', "r"),
    ('\u{ff53}', "s"),
    ('\u{ff54}', "t"),
    ('\u{ff55}', "u"),
    ('\u{ff56}', "v"),
    ('\u{ff57}', "w"),
    ('\u{ff58}', "x"),
    ('\u{ff59}', "y"),
    ('\u{ff5a}', "z"),
    ('\u{ff5b}', "{"),
    ('\u{ff5c}', "|"),
    ('\u{ff5d}', "}"),
    ('\u{ff5e}', "~"),
    ('\u{ff5f}', "\u{2985}"),
    ('\u{ff60}', "\u{2986}"),
    ('\u{ff61}', "\u{3002}"),
    ('\u{ff62}', "\u{300c}"),
    ('\u{ff63}', "\u{300d}"),
    ('\u{ff64}', "\u{3001}"),
    ('\u{ff65}', "\u{30fb}"),
    ('\u{ff66}', "\u{30f2}"),
    ('\u{ff67}', "\u{30a1}"),
    ('\u{ff68}', "\u{30a3}"),
    ('\u{ff69}', "\u{30a5}"),
    ('\u{ff6a}', "\u{30a7}"),
    ('\u{ff6b}', "\u{30a9}"),
    ('\u{ff6c}', "\u{30e3}"),
    ('\u{ff6d}', "\u{30e5}"),
    ('\u{ff6e}', "\u{30e7}"),
    ('\u{ff6f}', "\u{30c3}"),
    ('\u{ff70}', "\u{30fc}"),
    ('\u{ff71}', "\u{30a2}"),
    ('\u{ff72}', "\u{30a4}"),
    ('\u{ff73}', "\u{30a6}"),
    ('\u{ff74}', "\u{30a8}"),
    ('\u{ff75}', "\u{30aa}"),
    ('\u{ff76}', "\u{30ab}"),
    ('\u{ff77}', "\u{30ad}"),
    ('\u{ff78}', "\u{30af}"),
    ('\u{ff79}', "\u{30b1}"),
    ('\u{ff7a}', "\u{30b3}"),
    ('\u{ff7b}', "\u{30b5}"),
    ('\u{ff7c}', "\u{30b7}"),
    ('\u{ff7d}', "\u{30b9}"),
    ('\u{ff7e}', "\u{30bb}"),
    ('\u{ff7f}', "\u{30bd}"),
    ('\u{ff80}', "\u{30bf}"),
    ('\u{ff81}', "\u{30c1}"),
    ('\u{ff82}', "\u{30c4}"),
    ('\u{ff83}', "\u{30c6}"),
    ('\u{ff84}', "\u{30c8}"),
    ('\u{ff85}', "\u{30ca}"),
    ('\u{ff86}', "\u{30cb}"),
    ('\u{ff87}', "\u{30cc}"),
    ('\u{ff88}', "\u{30cd}"),
    ('\u{ff89}', "\u{30ce}"),
    ('\u{ff8a}', "\u{30cf}"),
    ('\u{ff8b}', "\u{30d2}"),
    ('\u{ff8c}', "\u{30d5}"),
    ('\u{ff8d}', "\u{30d8}"),
    ('\u{ff8e}', "\u{30db}"),
    ('\u{ff8f}', "\u{30de}"),
    ('\u{ff90}', "\u{30df}"),
    ('\u{ff91}', "\u{30e0}"),
    ('\u{ff92}', "\u{30e1}"),
    ('\u{ff93}', "\u{30e2}"),
    ('\u{ff94}', "\u{30e4}"),
    ('\u{ff95}', "\u{30e6}"),
    ('\u{ff96}', "\u{30e8}"),
    ('\u{ff97}', "\u{30e9}"),
    ('\u{ff98}', "\u{30ea}"),
    ('\u{ff99}', "\u{30eb}"),
    ('\u{ff9a}', "\u{30ec}"),
    ('\u{ff9b}', "\u{30ed}"),
    ('\u{ff9c}', "\u{30ef}"),
    ('\u{ff9d}', "\u{30f3}"),
    ('\u{ff9e}', "\u{3099}"),
    ('\u{ff9f}', "\u{309a}"),
    ('\u{ffa0}', "\u{1160}"),
    ('\u{ffa1}', "\u{1100}"),
    ('\u{ffa2}', "\u{1101}"),
    ('\u{ffa3}', "\u{11aa}"),
    ('\u{ffa4}', "\u{1102}"),
    ('\u{ffa5}', "\u{11ac}"),
    ('\u{ffa6}', "\u{11ad}"),
    ('\u{ffa7}', "\u{1103}"),
    ('\u{ffa8}', "\u{1104}"),
    ('\u{ffa9}', "\u{1105}"),
    ('\u{ffaa}', "\u{11b0}"),
    ('\u{ffab}', "\u{11b1}"),
    ('\u{ffac}', "\u{11b2}"),
    ('\u{ffad}', "\u{11b3}"),
    ('\u{ffae}', "\u{11b4}"),
    ('\u{ffaf}', "\u{11b5}"),
    ('\u{ffb0}', "\u{111a}"),
    ('\u{ffb1}', "\u{1106}"),
    ('\u{ffb2}', "\u{1107}"),
    ('\u{ffb3}', "\u{1108}"),
    ('\u{ffb4}', "\u{1121}"),
    ('\u{ffb5}', "\u{1109}"),
    ('\u{ffb6}', "\u{110a}"),
    ('\u{ffb7}', "\u{110b}"),
    ('\u{ffb8}', "\u{110c}"),
    ('\u{ffb9}', "\u{110d}"),
    ('\u{ffba}', "\u{110e}"),
    ('\u{ffbb}', "\u{110f}"),
    ('\u{ffbc}', "\u{1110}"),
    ('\u{ffbd}', "\u{1111}"),
    ('\u{ffbe}', "\u{1112}"),
    ('\u{ffc2}', "\u{1161}"),
    ('\u{ffc3}', "\u{1162}"),
    ('\u{ffc4}', "\u{1163}"),
    ('\u{ffc5}', "\u{1164}"),
    ('\u{ffc6}', "\u{1165}"),
    ('\u{ffc7}', "\u{1166}"),
    ('\u{ffca}', "\u{1167}"),
    ('\u{ffcb}', "\u{1168}"),
    ('\u{ffcc}', "\u{1169}"),
    ('\u{ffcd}', "\u{116a}"),
    ('\u{ffce}', "\u{116b}"),
    ('\u{ffcf}', "\u{116c}"),
    ('\u{ffd2}', "\u{116d}"),
    ('\u{ffd3}', "\u{116e}"),
    ('\u{ffd4}', "\u{116f}"),
    ('\u{ffd5}', "\u{1170}"),
    ('\u{ffd6}', "\u{1171}"),
    ('\u{ffd7}', "\u{1172}"),
    ('\u{ffda}', "\u{1173}"),
    ('\u{ffdb}', "\u{1174}"),
    ('\u{ffdc}', "\u{1175}"),
    ('\u{ffe0}', "\u{a2}"),
    ('\u{ffe1}', "\u{a3}"),
    ('\u{ffe2}', "\u{ac}"),
    ('\u{ffe3}', " \u{304}"),
    ('\u{ffe4}', "\u{a6}"),
    ('\u{ffe5}', "\u{a5}"),
    ('\u{ffe6}', "\u{20a9}"),
    ('\u{ffe8}', "\u{2502}"),
    ('\u{ffe9}', "\u{2190}"),
    ('\u{ffea}', "\u{2191}"),
    ('\u{ffeb}', "\u{2192}"),
    ('\u{ffec}', "\u{2193}"),
    ('\u{ffed}', "\u{25a0}"),
    ('\u{ffee}', "\u{25cb}"),
];

/// Canonical decompositions (Hangul is algorithmic), space separated: `char=first+second` for pairs that
/// recompose, `char=first+second!` for pairs that do not (exclusions, non-starters), `char=first` for
/// singletons; all hex.
pub const CANONICAL_DECOMPOSITIONS: &str = "\
    c0=41+300 c1=41+301 c2=41+302 c3=41+303 c4=41+308 c5=41+30a c7=43+327 c8=45+300 c9=45+301 ca=45+302 \
    cb=45+308 cc=49+300 cd=49+301 ce=49+302 cf=49+308 d1=4e+303 d2=4f+300 d3=4f+301 d4=4f+302 d5=4f+303 \
    d6=4f+308 d9=55+300 da=55+301 db=55+302 dc=55+308 dd=59+301 e0=61+300 e1=61+301 e2=61+302 e3=61+303 \
    e4=61+308 e5=61+30a e7=63+327 e8=65+300 e9=65+301 ea=65+302 eb=65+308 ec=69+300 ed=69+301 ee=69+302 \
    ef=69+308 f1=6e+303 f2=6f+300 f3=6f+301 f4=6f+302 f5=6f+303 f6=6f+308 f9=75+300 fa=75+301 fb=75+302 \
    fc=75+308 fd=79+301 ff=79+308 100=41+304 101=61+304 102=41+306 103=61+306 104=41+328 105=61+328 \
    106=43+301 107=63+301 108=43+302 109=63+302 10a=43+307 10b=63+307 10c=43+30c 10d=63+30c 10e=44+30c \
    10f=64+30c 112=45+304 113=65+304 114=45+306 115=65+306 116=45+307 117=65+307 118=45+328 119=65+328 \
    11a=45+30c 11b=65+30c 11c=47+302 11d=67+302 11e=47+306 11f=67+306 120=47+307 121=67+307 122=47+327 \
    123=67+327 124=48+302 125=68+302 128=49+303 129=69+303 12a=49+304 12b=69+304 12c=49+306 12d=69+306 \
    12e=49+328 12f=69+328 130=49+307 134=4a+302 135=6a+302 136=4b+327 137=6b+327 139=4c+301 13a=6c+301 \
    13b=4c+327 13c=6c+327 13d=4c+30c 13e=6c+30c 143=4e+301 144=6e+301 145=4e+327 146=6e+327 147=4e+30c \
    148=6e+30c 14c=4f+304 14d=6f+304 14e=4f+306 14f=6f+306 150=4f+30b 151=6f+30b 154=52+301 155=72+301 \
    156=52+327 157=72+327 158=52+30c 159=72+30c 15a=53+301 15b=73+301 15c=53+302 15d=73+302 15e=53+327 \
    15f=73+327 160=53+30c 161=73+30c 162=54+327 163=74+327 164=54+30c 165=74+30c 168=55+303 169=75+303 \
    16a=55+304 16b=75+304 16c=55+306 16d=75+306 16e=55+30a 16f=75+30a 170=55+30b 171=75+30b 172=55+328 \
    173=75+328 174=57+302 175=77+302 176=59+302 177=79+302 178=59+308 179=5a+301 17a=7a+301 17b=5a+307 \
    17c=7a+307 17d=5a+30c 17e=7a+30c 1a0=4f+31b 1a1=6f+31b 1af=55+31b 1b0=75+31b 1cd=41+30c 1ce=61+30c \
    1cf=49+30c 1d0=69+30c 1d1=4f+30c 1d2=6f+30c 1d3=55+30c 1d4=75+30c 1d5=dc+304 1d6=fc+304 1d7=dc+301 \
    1d8=fc+301 1d9=dc+30c 1da=fc+30c 1db=dc+300 1dc=fc+300 1de=c4+304 1df=e4+304 1e0=226+304 \
    1e1=227+304 1e2=c6+304 1e3=e6+304 1e6=47+30c 1e7=67+30c 1e8=4b+30c 1e9=6b+30c 1ea=4f+328 1eb=6f+328 \
    1ec=1ea+304 1ed=1eb+304 1ee=1b7+30c 1ef=292+30c 1f0=6a+30c 1f4=47+301 1f5=67+301 1f8=4e+300 \
    1f9=6e+300 1fa=c5+301 1fb=e5+301 1fc=c6+301 1fd=e6+301 1fe=d8+301 1ff=f8+301 200=41+30f 201=61+30f \
    202=41+311 203=61+311 204=45+30f 205=65+30f 206=45+311 207=65+311 208=49+30f 209=69+30f 20a=49+311 \
    20b=69+311 20c=4f+30f 20d=6f+30f 20e=4f+311 20f=6f+311 210=52+30f 211=72+30f 212=52+311 213=72+311 \
    214=55+30f 215=75+30f 216=55+311 217=75+311 218=53+326 219=73+326 21a=54+326 21b=74+326 21e=48+30c \
    21f=68+30c 226=41+307 227=61+307 228=45+327 229=65+327 22a=d6+304 22b=f6+304 22c=d5+304 22d=f5+304 \
    22e=4f+307 22f=6f+307 230=22e+304 231=22f+304 232=59+304 233=79+304 340=300 341=301 343=313 \
    344=308+301! 374=2b9 37e=3b 385=a8+301 386=391+301 387=b7 388=395+301 389=397+301 38a=399+301 \
    38c=39f+301 38e=3a5+301 38f=3a9+301 390=3ca+301 3aa=399+308 3ab=3a5+308 3ac=3b1+301 3ad=3b5+301 \
    3ae=3b7+301 3af=3b9+301 3b0=3cb+301 3ca=3b9+308 3cb=3c5+308 3cc=3bf+301 3cd=3c5+301 3ce=3c9+301 \
    3d3=3d2+301 3d4=3d2+308 400=415+300 401=415+308 403=413+301 407=406+308 40c=41a+301 40d=418+300 \
    40e=423+306 419=418+306 439=438+306 450=435+300 451=435+308 453=433+301 457=456+308 45c=43a+301 \
    45d=438+300 45e=443+306 476=474+30f 477=475+30f 4c1=416+306 4c2=436+306 4d0=410+306 4d1=430+306 \
    4d2=410+308 4d3=430+308 4d6=415+306 4d7=435+306 4da=4d8+308 4db=4d9+308 4dc=416+308 4dd=436+308 \
    4de=417+308 4df=437+308 4e2=418+304 4e3=438+304 4e4=418+308 4e5=438+308 4e6=41e+308 4e7=43e+308 \
    4ea=4e8+308 4eb=4e9+308 4ec=42d+308 4ed=44d+308 4ee=423+304 4ef=443+304 4f0=423+308 4f1=443+308 \
    4f2=423+30b 4f3=443+30b 4f4=427+308 4f5=447+308 4f8=42b+308 4f9=44b+308 622=627+653 623=627+654 \
    624=648+654 625=627+655 626=64a+654 6c0=6d5+654 6c2=6c1+654 6d3=6d2+654 929=928+93c 931=930+93c \
    934=933+93c 958=915+93c! 959=916+93c! 95a=917+93c! 95b=91c+93c! 95c=921+93c! 95d=922+93c! \
    95e=92b+93c! 95f=92f+93c! 9cb=9c7+9be 9cc=9c7+9d7 9dc=9a1+9bc! 9dd=9a2+9bc! 9df=9af+9bc! \
    a33=a32+a3c! a36=a38+a3c! a59=a16+a3c! a5a=a17+a3c! a5b=a1c+a3c! a5e=a2b+a3c! b48=b47+b56 \
    b4b=b47+b3e b4c=b47+b57 b5c=b21+b3c! b5d=b22+b3c! b94=b92+bd7 bca=bc6+bbe bcb=bc7+bbe bcc=bc6+bd7 \
    c48=c46+c56 cc0=cbf+cd5 cc7=cc6+cd5 cc8=cc6+cd6 cca=cc6+cc2 ccb=cca+cd5 d4a=d46+d3e d4b=d47+d3e \
    d4c=d46+d57 dda=dd9+dca ddc=dd9+dcf ddd=ddc+dca dde=dd9+ddf f43=f42+fb7! f4d=f4c+fb7! f52=f51+fb7! \
    f57=f56+fb7! f5c=f5b+fb7! f69=f40+fb5! f73=f71+f72! f75=f71+f74! f76=fb2+f80! f78=fb3+f80! \
    f81=f71+f80! f93=f92+fb7! f9d=f9c+fb7! fa2=fa1+fb7! fa7=fa6+fb7! fac=fab+fb7! fb9=f90+fb5! \
    1026=1025+102e 1b06=1b05+1b35 1b08=1b07+1b35 1b0a=1b09+1b35 1b0c=1b0b+1b35 1b0e=1b0d+1b35 \
    1b12=1b11+1b35 1b3b=1b3a+1b35 1b3d=1b3c+1b35 1b40=1b3e+1b35 1b41=1b3f+1b35 1b43=1b42+1b35 \
    1e00=41+325 1e01=61+325 1e02=42+307 1e03=62+307 1e04=42+323 1e05=62+323 1e06=42+331 1e07=62+331 \
    1e08=c7+301 1e09=e7+301 1e0a=44+307 1e0b=64+307 1e0c=44+323 1e0d=64+323 1e0e=44+331 1e0f=64+331 \
    1e10=44+327 1e11=64+327 1e12=44+32d 1e13=64+32d 1e14=112+300 1e15=113+300 1e16=112+301 1e17=113+301 \
    1e18=45+32d 1e19=65+32d 1e1a=45+330 1e1b=65+330 1e1c=228+306 1e1d=229+306 1e1e=46+307 1e1f=66+307 \
    1e20=47+304 1e21=67+304 1e22=48+307 1e23=68+307 1e24=48+323 1e25=68+323 1e26=48+308 1e27=68+308 \
    1e28=48+327 1e29=68+327 1e2a=48+32e 1e2b=68+32e 1e2c=49+330 1e2d=69+330 1e2e=cf+301 1e2f=ef+301 \
    1e30=4b+301 1e31=6b+301 1e32=4b+323 1e33=6b+323 1e34=4b+331 1e35=6b+331 1e36=4c+323 1e37=6c+323 \
    1e38=1e36+304 1e39=1e37+304 1e3a=4c+331 1e3b=6c+331 1e3c=4c+32d 1e3d=6c+32d 1e3e=4d+301 1e3f=6d+301 \
    1e40=4d+307 1e41=6d+307 1e42=4d+323 1e43=6d+323 1e44=4e+307 1e45=6e+307 1e46=4e+323 1e47=6e+323 \
    1e48=4e+331 1e49=6e+331 1e4a=4e+32d 1e4b=6e+32d 1e4c=d5+301 1e4d=f5+301 1e4e=d5+308 1e4f=f5+308 \
    1e50=14c+300 1e51=14d+300 1e52=14c+301 1e53=14d+301 1e54=50+301 1e55=70+301 1e56=50+307 1e57=70+307 \
    1e58=52+307 1e59=72+307 1e5a=52+323 1e5b=72+323 1e5c=1e5a+304 1e5d=1e5b+304 1e5e=52+331 1e5f=72+331 \
    1e60=53+307 1e61=73+307 1e62=53+323 1e63=73+323 1e64=15a+307 1e65=15b+307 1e66=160+307 1e67=161+307 \
    1e68=1e62+307 1e69=1e63+307 1e6a=54+307 1e6b=74+307 1e6c=54+323 1e6d=74+323 1e6e=54+331 1e6f=74+331 \
    1e70=54+32d 1e71=74+32d 1e72=55+324 1e73=75+324 1e74=55+330 1e75=75+330 1e76=55+32d 1e77=75+32d \
    1e78=168+301 1e79=169+301 1e7a=16a+308 1e7b=16b+308 1e7c=56+303 1e7d=76+303 1e7e=56+323 1e7f=76+323 \
    1e80=57+300 1e81=77+300 1e82=57+301 1e83=77+301 1e84=57+308 1e85=77+308 1e86=57+307 1e87=77+307 \
    1e88=57+323 1e89=77+323 1e8a=58+307 1e8b=78+307 1e8c=58+308 1e8d=78+308 1e8e=59+307 1e8f=79+307 \
    1e90=5a+302 1e91=7a+302 1e92=5a+323 1e93=7a+323 1e94=5a+331 1e95=7a+331 1e96=68+331 1e97=74+308 \
    1e98=77+30a 1e99=79+30a 1e9b=17f+307 1ea0=41+323 1ea1=61+323 1ea2=41+309 1ea3=61+309 1ea4=c2+301 \
    1ea5=e2+301 1ea6=c2+300 1ea7=e2+300 1ea8=c2+309 1ea9=e2+309 1eaa=c2+303 1eab=e2+303 1eac=1ea0+302 \
    1ead=1ea1+302 1eae=102+301 1eaf=103+301 1eb0=102+300 1eb1=103+300 1eb2=102+309 1eb3=103+309 \
    1eb4=102+303 1eb5=103+303 1eb6=1ea0+306 1eb7=1ea1+306 1eb8=45+323 1eb9=65+323 1eba=45+309 \
    1ebb=65+309 1ebc=45+303 1ebd=65+303 1ebe=ca+301 1ebf=ea+301 1ec0=ca+300 1ec1=ea+300 1ec2=ca+309 \
    1ec3=ea+309 1ec4=ca+303 1ec5=ea+303 1ec6=1eb8+302 1ec7=1eb9+302 1ec8=49+309 1ec9=69+309 1eca=49+323 \
    1ecb=69+323 1ecc=4f+323 1ecd=6f+323 1ece=4f+309 1ecf=6f+309 1ed0=d4+301 1ed1=f4+301 1ed2=d4+300 \
    1ed3=f4+300 1ed4=d4+309 1ed5=f4+309 1ed6=d4+303 1ed7=f4+303 1ed8=1ecc+302 1ed9=1ecd+302 \
    1eda=1a0+301 1edb=1a1+301 1edc=1a0+300 1edd=1a1+300 1ede=1a0+309 1edf=1a1+309 1ee0=1a0+303 \
    1ee1=1a1+303 1ee2=1a0+323 1ee3=1a1+323 1ee4=55+323 1ee5=75+323 1ee6=55+309 1ee7=75+309 1ee8=1af+301 \
    1ee9=1b0+301 1eea=1af+300 1eeb=1b0+300 1eec=1af+309 1eed=1b0+309 1eee=1af+303 1eef=1b0+303 \
    1ef0=1af+323 1ef1=1b0+323 1ef2=59+300 1ef3=79+300 1ef4=59+323 1ef5=79+323 1ef6=59+309 1ef7=79+309 \
    1ef8=59+303 1ef9=79+303 1f00=3b1+313 1f01=3b1+314 1f02=1f00+300 1f03=1f01+300 1f04=1f00+301 \
    1f05=1f01+301 1f06=1f00+342 1f07=1f01+342 1f08=391+313 1f09=391+314 1f0a=1f08+300 1f0b=1f09+300 \
    1f0c=1f08+301 1f0d=1f09+301 1f0e=1f08+342 1f0f=1f09+342 1f10=3b5+313 1f11=3b5+314 1f12=1f10+300 \
    1f13=1f11+300 1f14=1f10+301 1f15=1f11+301 1f18=395+313 1f19=395+314 1f1a=1f18+300 1f1b=1f19+300 \
    1f1c=1f18+301 1f1d=1f19+301 1f20=3b7+313 1f21=3b7+314 1f22=1f20+300 1f23=1f21+300 1f24=1f20+301 \
    1f25=1f21+301 1f26=1f20+342 1f27=1f21+342 1f28=397+313 1f29=397+314 1f2a=1f28+300 1f2b=1f29+300 \
    1f2c=1f28+301 1f2d=1f29+301 1f2e=1f28+342 1f2f=1f29+342 1f30=3b9+313 1f31=3b9+314 1f32=1f30+300 \
    1f33=1f31+300 1f34=1f30+301 1f35=1f31+301 1f36=1f30+342 1f37=1f31+342 1f38=399+313 1f39=399+314 \
    1f3a=1f38+300 1f3b=1f39+300 1f3c=1f38+301 1f3d=1f39+301 1f3e=1f38+342 1f3f=1f39+342 1f40=3bf+313 \
    1f41=3bf+314 1f42=1f40+300 1f43=1f41+300 1f44=1f40+301 1f45=1f41+301 1f48=39f+313 1f49=39f+314 \
    1f4a=1f48+300 1f4b=1f49+300 1f4c=1f48+301 1f4d=1f49+301 1f50=3c5+313 1f51=3c5+314 1f52=1f50+300 \
    1f53=1f51+300 1f54=1f50+301 1f55=1f51+301 1f56=1f50+342 1f57=1f51+342 1f59=3a5+314 1f5b=1f59+300 \
    1f5d=1f59+301 1f5f=1f59+342 1f60=3c9+313 1f61=3c9+314 1f62=1f60+300 1f63=1f61+300 1f64=1f60+301 \
    1f65=1f61+301 1f66=1f60+342 1f67=1f61+342 1f68=3a9+313 1f69=3a9+314 1f6a=1f68+300 1f6b=1f69+300 \
    1f6c=1f68+301 1f6d=1f69+301 1f6e=1f68+342 1f6f=1f69+342 1f70=3b1+300 1f71=3ac 1f72=3b5+300 1f73=3ad \
    1f74=3b7+300 1f75=3ae 1f76=3b9+300 1f77=3af 1f78=3bf+300 1f79=3cc 1f7a=3c5+300 1f7b=3cd \
    1f7c=3c9+300 1f7d=3ce 1f80=1f00+345 1f81=1f01+345 1f82=1f02+345 1f83=1f03+345 1f84=1f04+345 \
    1f85=1f05+345 1f86=1f06+345 1f87=1f07+345 1f88=1f08+345 1f89=1f09+345 1f8a=1f0a+345 1f8b=1f0b+345 \
    1f8c=1f0c+345 1f8d=1f0d+345 1f8e=1f0e+345 1f8f=1f0f+345 1f90=1f20+345 1f91=1f21+345 1f92=1f22+345 \
    1f93=1f23+345 1f94=1f24+345 1f95=1f25+345 1f96=1f26+345 1f97=1f27+345 1f98=1f28+345 1f99=1f29+345 \
    1f9a=1f2a+345 1f9b=1f2b+345 1f9c=1f2c+345 1f9d=1f2d+345 1f9e=1f2e+345 1f9f=1f2f+345 1fa0=1f60+345 \
    1fa1=1f61+345 1fa2=1f62+345 1fa3=1f63+345 1fa4=1f64+345 1fa5=1f65+345 1fa6=1f66+345 1fa7=1f67+345 \
    1fa8=1f68+345 1fa9=1f69+345 1faa=1f6a+345 1fab=1f6b+345 1fac=1f6c+345 1fad=1f6d+345 1fae=1f6e+345 \
    1faf=1f6f+345 1fb0=3b1+306 1fb1=3b1+304 1fb2=1f70+345 1fb3=3b1+345 1fb4=3ac+345 1fb6=3b1+342 \
    1fb7=1fb6+345 1fb8=391+306 1fb9=391+304 1fba=391+300 1fbb=386 1fbc=391+345 1fbe=3b9 1fc1=a8+342 \
    1fc2=1f74+345 1fc3=3b7+345 1fc4=3ae+345 1fc6=3b7+342 1fc7=1fc6+345 1fc8=395+300 1fc9=388 \
    1fca=397+300 1fcb=389 1fcc=397+345 1fcd=1fbf+300 1fce=1fbf+301 1fcf=1fbf+342 1fd0=3b9+306 \
    1fd1=3b9+304 1fd2=3ca+300 1fd3=390 1fd6=3b9+342 1fd7=3ca+342 1fd8=399+306 1fd9=399+304 1fda=399+300 \
    1fdb=38a 1fdd=1ffe+300 1fde=1ffe+301 1fdf=1ffe+342 1fe0=3c5+306 1fe1=3c5+304 1fe2=3cb+300 1fe3=3b0 \
    1fe4=3c1+313 1fe5=3c1+314 1fe6=3c5+342 1fe7=3cb+342 1fe8=3a5+306 1fe9=3a5+304 1fea=3a5+300 1feb=38e \
    1fec=3a1+314 1fed=a8+300 1fee=385 1fef=60 1ff2=1f7c+345 1ff3=3c9+345 1ff4=3ce+345 1ff6=3c9+342 \
    1ff7=1ff6+345 1ff8=39f+300 1ff9=38c 1ffa=3a9+300 1ffb=38f 1ffc=3a9+345 1ffd=b4 2000=2002 2001=2003 \
    2126=3a9 212a=4b 212b=c5 219a=2190+338 219b=2192+338 21ae=2194+338 21cd=21d0+338 21ce=21d4+338 \
    21cf=21d2+338 2204=2203+338 2209=2208+338 220c=220b+338 2224=2223+338 2226=2225+338 2241=223c+338 \
    2244=2243+338 2247=2245+338 2249=2248+338 2260=3d+338 2262=2261+338 226d=224d+338 226e=3c+338 \
    226f=3e+338 2270=2264+338 2271=2265+338 2274=2272+338 2275=2273+338 2278=2276+338 2279=2277+338 \
    2280=227a+338 2281=227b+338 2284=2282+338 2285=2283+338 2288=2286+338 2289=2287+338 22ac=22a2+338 \
    22ad=22a8+338 22ae=22a9+338 22af=22ab+338 22e0=227c+338 22e1=227d+338 22e2=2291+338 22e3=2292+338 \
    22ea=22b2+338 22eb=22b3+338 22ec=22b4+338 22ed=22b5+338 2329=3008 232a=3009 2adc=2add+338! \
    304c=304b+3099 304e=304d+3099 3050=304f+3099 3052=3051+3099 3054=3053+3099 3056=3055+3099 \
    3058=3057+3099 305a=3059+3099 305c=305b+3099 305e=305d+3099 3060=305f+3099 3062=3061+3099 \
    3065=3064+3099 3067=3066+3099 3069=3068+3099 3070=306f+3099 3071=306f+309a 3073=3072+3099 \
    3074=3072+309a 3076=3075+3099 3077=3075+309a 3079=3078+3099 307a=3078+309a 307c=307b+3099 \
    307d=307b+309a 3094=3046+3099 309e=309d+3099 30ac=30ab+3099 30ae=30ad+3099 30b0=30af+3099 \
    30b2=30b1+3099 30b4=30b3+3099 30b6=30b5+3099 30b8=30b7+3099 30ba=30b9+3099 30bc=30bb+3099 \
    30be=30bd+3099 30c0=30bf+3099 30c2=30c1+3099 30c5=30c4+3099 30c7=30c6+3099 30c9=30c8+3099 \
    30d0=30cf+3099 30d1=30cf+309a 30d3=30d2+3099 30d4=30d2+309a 30d6=30d5+3099 30d7=30d5+309a \
    30d9=30d8+3099 30da=30d8+309a 30dc=30db+3099 30dd=30db+309a 30f4=30a6+3099 30f7=30ef+3099 \
    30f8=30f0+3099 30f9=30f1+3099 30fa=30f2+3099 30fe=30fd+3099 f900=8c48 f901=66f4 f902=8eca f903=8cc8 \
    f904=6ed1 f905=4e32 f906=53e5 f907=9f9c f908=9f9c f909=5951 f90a=91d1 f90b=5587 f90c=5948 f90d=61f6 \
    f90e=7669 f90f=7f85 f910=863f f911=87ba f912=88f8 f913=908f f914=6a02 f915=6d1b f916=70d9 f917=73de \
    f918=843d f919=916a f91a=99f1 f91b=4e82 f91c=5375 f91d=6b04 f91e=721b f91f=862d f920=9e1e f921=5d50 \
    f922=6feb f923=85cd f924=8964 f925=62c9 f926=81d8 f927=881f f928=5eca f929=6717 f92a=6d6a f92b=72fc \
    f92c=90ce f92d=4f86 f92e=51b7 f92f=52de f930=64c4 f931=6ad3 f932=7210 f933=76e7 f934=8001 f935=8606 \
    f936=865c f937=8def f938=9732 f939=9b6f f93a=9dfa f93b=788c f93c=797f f93d=7da0 f93e=83c9 f93f=9304 \
    f940=9e7f f941=8ad6 f942=58df f943=5f04 f944=7c60 f945=807e f946=7262 f947=78ca f948=8cc2 f949=96f7 \
    f94a=58d8 f94b=5c62 f94c=6a13 f94d=6dda f94e=6f0f f94f=7d2f f950=7e37 f951=964b f952=52d2 f953=808b \
    f954=51dc f955=51cc f956=7a1c f957=7dbe f958=83f1 f959=9675 f95a=8b80 f95b=62cf f95c=6a02 f95d=8afe \
    f95e=4e39 f95f=5be7 f960=6012 f961=7387 f962=7570 f963=5317 f964=78fb f965=4fbf f966=5fa9 f967=4e0d \
    f968=6ccc f969=6578 f96a=7d22 f96b=53c3 f96c=585e f96d=7701 f96e=8449 f96f=8aaa f970=6bba f971=8fb0 \
    f972=6c88 f973=62fe f974=82e5 f975=63a0 f976=7565 f977=4eae f978=5169 f979=51c9 f97a=6881 f97b=7ce7 \
    f97c=826f f97d=8ad2 f97e=91cf f97f=52f5 f980=5442 f981=5973 f982=5eec f983=65c5 f984=6ffe f985=792a \
    f986=95ad f987=9a6a f988=9e97 f989=9ece f98a=529b f98b=66c6 f98c=6b77 f98d=8f62 f98e=5e74 f98f=6190 \
    f990=6200 f991=649a f992=6f23 f993=7149 f994=7489 f995=79ca f996=7df4 f997=806f f998=8f26 f999=84ee \
    f99a=9023 f99b=934a f99c=5217 f99d=52a3 f99e=54bd f99f=70c8 f9a0=88c2 f9a1=8aaa f9a2=5ec9 f9a3=5ff5 \
    f9a4=637b f9a5=6bae f9a6=7c3e f9a7=7375 f9a8=4ee4 f9a9=56f9 f9aa=5be7 f9ab=5dba f9ac=601c f9ad=73b2 \
    f9ae=7469 f9af=7f9a f9b0=8046 f9b1=9234 f9b2=96f6 f9b3=9748 f9b4=9818 f9b5=4f8b f9b6=79ae f9b7=91b4 \
    f9b8=96b8 f9b9=60e1 f9ba=4e86 f9bb=50da f9bc=5bee f9bd=5c3f f9be=6599 f9bf=6a02 f9c0=71ce f9c1=7642 \
    f9c2=84fc f9c3=907c f9c4=9f8d f9c5=6688 f9c6=962e f9c7=5289 f9c8=677b f9c9=67f3 f9ca=6d41 f9cb=6e9c \
    f9cc=7409 f9cd=7559 f9ce=786b f9cf=7d10 f9d0=985e f9d1=516d f9d2=622e f9d3=9678 f9d4=502b f9d5=5d19 \
    f9d6=6dea f9d7=8f2a f9d8=5f8b f9d9=6144 f9da=6817 f9db=7387 f9dc=9686 f9dd=5229 f9de=540f f9df=5c65 \
    f9e0=6613 f9e1=674e f9e2=68a8 f9e3=6ce5 f9e4=7406 f9e5=75e2 f9e6=7f79 f9e7=88cf f9e8=88e1 f9e9=91cc \
    f9ea=96e2 f9eb=533f f9ec=6eba f9ed=541d f9ee=71d0 f9ef=7498 f9f0=85fa f9f1=96a3 f9f2=9c57 f9f3=9e9f \
    f9f4=6797 f9f5=6dcb f9f6=81e8 f9f7=7acb f9f8=7b20 f9f9=7c92 f9fa=72c0 f9fb=7099 f9fc=8b58 f9fd=4ec0 \
    f9fe=8336 f9ff=523a fa00=5207 fa01=5ea6 fa02=62d3 fa03=7cd6 fa04=5b85 fa05=6d1e fa06=66b4 fa07=8f3b \
    fa08=884c fa09=964d fa0a=898b fa0b=5ed3 fa0c=5140 fa0d=55c0 fa10=585a fa12=6674 fa15=51de fa16=732a \
    fa17=76ca fa18=793c fa19=795e fa1a=7965 fa1b=798f fa1c=9756 fa1d=7cbe fa1e=7fbd fa20=8612 fa22=8af8 \
    fa25=9038 fa26=90fd fa2a=98ef fa2b=98fc fa2c=9928 fa2d=9db4 fa2e=90de fa2f=96b7 fa30=4fae fa31=50e7 \
    fa32=514d fa33=52c9 fa34=52e4 fa35=5351 fa36=559d fa37=5606 fa38=5668 fa39=5840 fa3a=58a8 fa3b=5c64 \
    fa3c=5c6e fa3d=6094 fa3e=6168 fa3f=618e fa40=61f2 fa41=654f fa42=65e2 fa43=6691 fa44=6885 fa45=6d77 \
    fa46=6e1a fa47=6f22 fa48=716e fa49=722b fa4a=7422 fa4b=7891 fa4c=793e fa4d=7949 fa4e=7948 fa4f=7950 \
    fa50=7956 fa51=795d fa52=798d fa53=798e fa54=7a40 fa55=7a81 fa56=7bc0 fa57=7df4 fa58=7e09 fa59=7e41 \
    fa5a=7f72 fa5b=8005 fa5c=81ed fa5d=8279 fa5e=8279 fa5f=8457 fa60=8910 fa61=8996 fa62=8b01 fa63=8b39 \
    fa64=8cd3 fa65=8d08 fa66=8fb6 fa67=9038 fa68=96e3 fa69=97ff fa6a=983b fa6b=6075 fa6c=242ee \
    fa6d=8218 fa70=4e26 fa71=51b5 fa72=5168 fa73=4f80 fa74=5145 fa75=5180 fa76=52c7 fa77=52fa fa78=559d \
    fa79=5555 fa7a=5599 fa7b=55e2 fa7c=585a fa7d=58b3 fa7e=5944 fa7f=5954 fa80=5a62 fa81=5b28 fa82=5ed2 \
    fa83=5ed9 fa84=5f69 fa85=5fad fa86=60d8 fa87=614e fa88=6108 fa89=618e fa8a=6160 fa8b=61f2 fa8c=6234 \
    fa8d=63c4 fa8e=641c fa8f=6452 fa90=6556 fa91=6674 fa92=6717 fa93=671b fa94=6756 fa95=6b79 fa96=6bba \
    fa97=6d41 fa98=6edb fa99=6ecb fa9a=6f22 fa9b=701e fa9c=716e fa9d=77a7 fa9e=7235 fa9f=72af faa0=732a \
    faa1=7471 faa2=7506 faa3=753b faa4=761d faa5=761f faa6=76ca faa7=76db faa8=76f4 faa9=774a faaa=7740 \
    faab=78cc faac=7ab1 faad=7bc0 faae=7c7b faaf=7d5b fab0=7df4 fab1=7f3e fab2=8005 fab3=8352 fab4=83ef \
    fab5=8779 fab6=8941 fab7=8986 fab8=8996 fab9=8abf faba=8af8 fabb=8acb fabc=8b01 fabd=8afe fabe=8aed \
    fabf=8b39 fac0=8b8a fac1=8d08 fac2=8f38 fac3=9072 fac4=9199 fac5=9276 fac6=967c fac7=96e3 fac8=9756 \
    fac9=97db faca=97ff facb=980b facc=983b facd=9b12 face=9f9c facf=2284a fad0=22844 fad1=233d5 \
    fad2=3b9d fad3=4018 fad4=4039 fad5=25249 fad6=25cd0 fad7=27ed3 fad8=9f43 fad9=9f8e fb1d=5d9+5b4! \
    fb1f=5f2+5b7! fb2a=5e9+5c1! fb2b=5e9+5c2! fb2c=fb49+5c1! fb2d=fb49+5c2! fb2e=5d0+5b7! fb2f=5d0+5b8! \
    fb30=5d0+5bc! fb31=5d1+5bc! fb32=5d2+5bc! fb33=5d3+5bc! fb34=5d4+5bc! fb35=5d5+5bc! fb36=5d6+5bc! \
    fb38=5d8+5bc! fb39=5d9+5bc! fb3a=5da+5bc! fb3b=5db+5bc! fb3c=5dc+5bc! fb3e=5de+5bc! fb40=5e0+5bc! \
    fb41=5e1+5bc! fb43=5e3+5bc! fb44=5e4+5bc! fb46=5e6+5bc! fb47=5e7+5bc! fb48=5e8+5bc! fb49=5e9+5bc! \
    fb4a=5ea+5bc! fb4b=5d5+5b9! fb4c=5d1+5bf! fb4d=5db+5bf! fb4e=5e4+5bf! 1109a=11099+110ba \
    1109c=1109b+110ba 110ab=110a5+110ba 1112e=11131+11127 1112f=11132+11127 1134b=11347+1133e \
    1134c=11347+11357 114bb=114b9+114ba 114bc=114b9+114b0 114be=114b9+114bd 115ba=115b8+115af \
    115bb=115b9+115af 11938=11935+11930 1d15e=1d157+1d165! 1d15f=1d158+1d165! 1d160=1d15f+1d16e! \
    1d161=1d15f+1d16f! 1d162=1d15f+1d170! 1d163=1d15f+1d171! 1d164=1d15f+1d172! 1d1bb=1d1b9+1d165! \
    1d1bc=1d1ba+1d165! 1d1bd=1d1bb+1d16e! 1d1be=1d1bc+1d16e! 1d1bf=1d1bb+1d16f! 1d1c0=1d1bc+1d16f! \
    2f800=4e3d 2f801=4e38 2f802=4e41 2f803=20122 2f804=4f60 2f805=4fae 2f806=4fbb 2f807=5002 2f808=507a \
    2f809=5099 2f80a=50e7 2f80b=50cf 2f80c=349e 2f80d=2063a 2f80e=514d 2f80f=5154 2f810=5164 2f811=5177 \
    2f812=2051c 2f813=34b9 2f814=5167 2f815=518d 2f816=2054b 2f817=5197 2f818=51a4 2f819=4ecc \
    2f81a=51ac 2f81b=51b5 2f81c=291df 2f81d=51f5 2f81e=5203 2f81f=34df 2f820=523b 2f821=5246 2f822=5272 \
    2f823=5277 2f824=3515 2f825=52c7 2f826=52c9 2f827=52e4 2f828=52fa 2f829=5305 2f82a=5306 2f82b=5317 \
    2f82c=5349 2f82d=5351 2f82e=535a 2f82f=5373 2f830=537d 2f831=537f 2f832=537f 2f833=537f 2f834=20a2c \
    2f835=7070 2f836=53ca 2f837=53df 2f838=20b63 2f839=53eb 2f83a=53f1 2f83b=5406 2f83c=549e 2f83d=5438 \
    2f83e=5448 2f83f=5468 2f840=54a2 2f841=54f6 2f842=5510 2f843=5553 2f844=5563 2f845=5584 2f846=5584 \
    2f847=5599 2f848=55ab 2f849=55b3 2f84a=55c2 2f84b=5716 2f84c=5606 2f84d=5717 2f84e=5651 2f84f=5674 \
    2f850=5207 2f851=58ee 2f852=57ce 2f853=57f4 2f854=580d 2f855=578b 2f856=5832 2f857=5831 2f858=58ac \
    2f859=214e4 2f85a=58f2 2f85b=58f7 2f85c=5906 2f85d=591a 2f85e=5922 2f85f=5962 2f860=216a8 \
    2f861=216ea 2f862=59ec 2f863=5a1b 2f864=5a27 2f865=59d8 2f866=5a66 2f867=36ee 2f868=36fc 2f869=5b08 \
    2f86a=5b3e 2f86b=5b3e 2f86c=219c8 2f86d=5bc3 2f86e=5bd8 2f86f=5be7 2f870=5bf3 2f871=21b18 \
    2f872=5bff 2f873=5c06 2f874=5f53 2f875=5c22 2f876=3781 2f877=5c60 2f878=5c6e 2f879=5cc0 2f87a=5c8d \
    2f87b=21de4 2f87c=5d43 2f87d=21de6 2f87e=5d6e 2f87f=5d6b 2f880=5d7c 2f881=5de1 2f882=5de2 \
    2f883=382f 2f884=5dfd 2f885=5e28 2f886=5e3d 2f887=5e69 2f888=3862 2f889=22183 2f88a=387c 2f88b=5eb0 \
    2f88c=5eb3 2f88d=5eb6 2f88e=5eca 2f88f=2a392 2f890=5efe 2f891=22331 2f892=22331 2f893=8201 \
    2f894=5f22 2f895=5f22 2f896=38c7 2f897=232b8 2f898=261da 2f899=5f62 2f89a=5f6b 2f89b=38e3 \
    2f89c=5f9a 2f89d=5fcd 2f89e=5fd7 2f89f=5ff9 2f8a0=6081 2f8a1=393a 2f8a2=391c 2f8a3=6094 2f8a4=226d4 \
    2f8a5=60c7 2f8a6=6148 2f8a7=614c 2f8a8=614e 2f8a9=614c 2f8aa=617a 2f8ab=618e 2f8ac=61b2 2f8ad=61a4 \
    2f8ae=61af 2f8af=61de 2f8b0=61f2 2f8b1=61f6 2f8b2=6210 2f8b3=621b 2f8b4=625d 2f8b5=62b1 2f8b6=62d4 \
    2f8b7=6350 2f8b8=22b0c 2f8b9=633d 2f8ba=62fc 2f8bb=6368 2f8bc=6383 2f8bd=63e4 2f8be=22bf1 \
    2f8bf=6422 2f8c0=63c5 2f8c1=63a9 2f8c2=3a2e 2f8c3=6469 2f8c4=647e 2f8c5=649d 2f8c6=6477 2f8c7=3a6c \
    2f8c8=654f 2f8c9=656c 2f8ca=2300a 2f8cb=65e3 2f8cc=66f8 2f8cd=6649 2f8ce=3b19 2f8cf=6691 2f8d0=3b08 \
    2f8d1=3ae4 2f8d2=5192 2f8d3=5195 2f8d4=6700 2f8d5=669c 2f8d6=80ad 2f8d7=43d9 2f8d8=6717 2f8d9=671b \
    2f8da=6721 2f8db=675e 2f8dc=6753 2f8dd=233c3 2f8de=3b49 2f8df=67fa 2f8e0=6785 2f8e1=6852 2f8e2=6885 \
    2f8e3=2346d 2f8e4=688e 2f8e5=681f 2f8e6=6914 2f8e7=3b9d 2f8e8=6942 2f8e9=69a3 2f8ea=69ea 2f8eb=6aa8 \
    2f8ec=236a3 2f8ed=6adb 2f8ee=3c18 2f8ef=6b21 2f8f0=238a7 2f8f1=6b54 2f8f2=3c4e 2f8f3=6b72 \
    2f8f4=6b9f 2f8f5=6bba 2f8f6=6bbb 2f8f7=23a8d 2f8f8=21d0b 2f8f9=23afa 2f8fa=6c4e 2f8fb=23cbc \
    2f8fc=6cbf 2f8fd=6ccd 2f8fe=6c67 2f8ff=6d16 2f900=6d3e 2f901=6d77 2f902=6d41 2f903=6d69 2f904=6d78 \
    2f905=6d85 2f906=23d1e 2f907=6d34 2f908=6e2f 2f909=6e6e 2f90a=3d33 2f90b=6ecb 2f90c=6ec7 \
    2f90d=23ed1 2f90e=6df9 2f90f=6f6e 2f910=23f5e 2f911=23f8e 2f912=6fc6 2f913=7039 2f914=701e \
    2f915=701b 2f916=3d96 2f917=704a 2f918=707d 2f919=7077 2f91a=70ad 2f91b=20525 2f91c=7145 \
    2f91d=24263 2f91e=719c 2f91f=243ab 2f920=7228 2f921=7235 2f922=7250 2f923=24608 2f924=7280 \
    2f925=7295 2f926=24735 2f927=24814 2f928=737a 2f929=738b 2f92a=3eac 2f92b=73a5 2f92c=3eb8 \
    2f92d=3eb8 2f92e=7447 2f92f=745c 2f930=7471 2f931=7485 2f932=74ca 2f933=3f1b 2f934=7524 2f935=24c36 \
    2f936=753e 2f937=24c92 2f938=7570 2f939=2219f 2f93a=7610 2f93b=24fa1 2f93c=24fb8 2f93d=25044 \
    2f93e=3ffc 2f93f=4008 2f940=76f4 2f941=250f3 2f942=250f2 2f943=25119 2f944=25133 2f945=771e \
    2f946=771f 2f947=771f 2f948=774a 2f949=4039 2f94a=778b 2f94b=4046 2f94c=4096 2f94d=2541d 2f94e=784e \
    2f94f=788c 2f950=78cc 2f951=40e3 2f952=25626 2f953=7956 2f954=2569a 2f955=256c5 2f956=798f \
    2f957=79eb 2f958=412f 2f959=7a40 2f95a=7a4a 2f95b=7a4f 2f95c=2597c 2f95d=25aa7 2f95e=25aa7 \
    2f95f=7aee 2f960=4202 2f961=25bab 2f962=7bc6 2f963=7bc9 2f964=4227 2f965=25c80 2f966=7cd2 \
    2f967=42a0 2f968=7ce8 2f969=7ce3 2f96a=7d00 2f96b=25f86 2f96c=7d63 2f96d=4301 2f96e=7dc7 2f96f=7e02 \
    2f970=7e45 2f971=4334 2f972=26228 2f973=26247 2f974=4359 2f975=262d9 2f976=7f7a 2f977=2633e \
    2f978=7f95 2f979=7ffa 2f97a=8005 2f97b=264da 2f97c=26523 2f97d=8060 2f97e=265a8 2f97f=8070 \
    2f980=2335f 2f981=43d5 2f982=80b2 2f983=8103 2f984=440b 2f985=813e 2f986=5ab5 2f987=267a7 \
    2f988=267b5 2f989=23393 2f98a=2339c 2f98b=8201 2f98c=8204 2f98d=8f9e 2f98e=446b 2f98f=8291 \
    2f990=828b 2f991=829d 2f992=52b3 2f993=82b1 2f994=82b3 2f995=82bd 2f996=82e6 2f997=26b3c 2f998=82e5 \
    2f999=831d 2f99a=8363 2f99b=83ad 2f99c=8323 2f99d=83bd 2f99e=83e7 2f99f=8457 2f9a0=8353 2f9a1=83ca \
    2f9a2=83cc 2f9a3=83dc 2f9a4=26c36 2f9a5=26d6b 2f9a6=26cd5 2f9a7=452b 2f9a8=84f1 2f9a9=84f3 \
    2f9aa=8516 2f9ab=273ca 2f9ac=8564 2f9ad=26f2c 2f9ae=455d 2f9af=4561 2f9b0=26fb1 2f9b1=270d2 \
    2f9b2=456b 2f9b3=8650 2f9b4=865c 2f9b5=8667 2f9b6=8669 2f9b7=86a9 2f9b8=8688 2f9b9=870e 2f9ba=86e2 \
    2f9bb=8779 2f9bc=8728 2f9bd=876b 2f9be=8786 2f9bf=45d7 2f9c0=87e1 2f9c1=8801 2f9c2=45f9 2f9c3=8860 \
    2f9c4=8863 2f9c5=27667 2f9c6=88d7 2f9c7=88de 2f9c8=4635 2f9c9=88fa 2f9ca=34bb 2f9cb=278ae \
    2f9cc=27966 2f9cd=46be 2f9ce=46c7 2f9cf=8aa0 2f9d0=8aed 2f9d1=8b8a 2f9d2=8c55 2f9d3=27ca8 \
    2f9d4=8cab 2f9d5=8cc1 2f9d6=8d1b 2f9d7=8d77 2f9d8=27f2f 2f9d9=20804 2f9da=8dcb 2f9db=8dbc \
    2f9dc=8df0 2f9dd=208de 2f9de=8ed4 2f9df=8f38 2f9e0=285d2 2f9e1=285ed 2f9e2=9094 2f9e3=90f1 \
    2f9e4=9111 2f9e5=2872e 2f9e6=911b 2f9e7=9238 2f9e8=92d7 2f9e9=92d8 2f9ea=927c 2f9eb=93f9 2f9ec=9415 \
    2f9ed=28bfa 2f9ee=958b 2f9ef=4995 2f9f0=95b7 2f9f1=28d77 2f9f2=49e6 2f9f3=96c3 2f9f4=5db2 \
    2f9f5=9723 2f9f6=29145 2f9f7=2921a 2f9f8=4a6e 2f9f9=4a76 2f9fa=97e0 2f9fb=2940a 2f9fc=4ab2 \
    2f9fd=29496 2f9fe=980b 2f9ff=980b 2fa00=9829 2fa01=295b6 2fa02=98e2 2fa03=4b33 2fa04=9929 \
    2fa05=99a7 2fa06=99c2 2fa07=99fe 2fa08=4bce 2fa09=29b30 2fa0a=9b12 2fa0b=9c40 2fa0c=9cfd 2fa0d=4cce \
    2fa0e=4ced 2fa0f=9d67 2fa10=2a0ce 2fa11=4cf8 2fa12=2a105 2fa13=2a20e 2fa14=2a291 2fa15=9ebb \
    2fa16=4d56 2fa17=9ef9 2fa18=9efe 2fa19=9f05 2fa1a=9f0f 2fa1b=9f16 2fa1c=9f3b 2fa1d=2a600 \
";
/// Non-zero canonical combining classes as `(first, last, class)` ranges.
pub const COMBINING_CLASSES: [(u32, u32, u8); 382] = [
    (0x300, 0x314, 230),
    (0x315, 0x315, 232),
    (0x316, 0x319, 220),
    (0x31a, 0x31a, 232),
    (0x31b, 0x31b, 216),
    (0x31c, 0x320, 220),
    (0x321, 0x322, 202),
    (0x323, 0x326, 220),
    (0x327, 0x328, 202),
    (0x329, 0x333, 220),
    (0x334, 0x338, 1),
    (0x339, 0x33c, 220),
    (0x33d, 0x344, 230),
    (0x345, 0x345, 240),
    (0x346, 0x346, 230),
    (0x347, 0x349, 220),
    (0x34a, 0x34c, 230),
    (0x34d, 0x34e, 220),
    (0x350, 0x352, 230),
    (0x353, 0x356, 220),
    (0x357, 0x357, 230),
    (0x358, 0x358, 232),
    (0x359, 0x35a, 220),
    (0x35b, 0x35b, 230),
    (0x35c, 0x35c, 233),
    (0x35d, 0x35e, 234),
    (0x35f, 0x35f, 233),
    (0x360, 0x361, 234),
    (0x362, 0x362, 233),
    (0x363, 0x36f, 230),
    (0x483, 0x487, 230),
    (0x591, 0x591, 220),
    (0x592, 0x595, 230),
    (0x596, 0x596, 220),
    (0x597, 0x599, 230),
    (0x59a, 0x59a, 222),
    (0x59b, 0x59b, 220),
    (0x59c, 0x5a1, 230),
    (0x5a2, 0x5a7, 220),
    (0x5a8, 0x5a9, 230),
    (0x5aa, 0x5aa, 220),
    (0x5ab, 0x5ac, 230),
    (0x5ad, 0x5ad, 222),
    (0x5ae, 0x5ae, 228),
    (0x5af, 0x5af, 230),
    (0x5b0, 0x5b0, 10),
    (0x5b1, 0x5b1, 11),
    (0x5b2, 0x5b2, 12),
    (0x5b3, 0x5b3, 13),
    (0x5b4, 0x5b4, 14),
    (0x5b5, 0x5b5, 15),
    (0x5b6, 0x5b6, 16),
    (0x5b7, 0x5b7, 17),
    (0x5b8, 0x5b8, 18),
    (0x5b9, 0x5ba, 19),
    (0x5bb, 0x5bb, 20),
    (0x5bc, 0x5bc, 21),
    (0x5bd, 0x5bd, 22),
    (0x5bf, 0x5bf, 23),
    (0x5c1, 0x5c1, 24),
    (0x5c2, 0x5c2, 25),
    (0x5c4, 0x5c4, 230),
    (0x5c5, 0x5c5, 220),
    (0x5c7, 0x5c7, 18),
    (0x610, 0x617, 230),
    (0x618, 0x618, 30),
    (0x619, 0x619, 31),
    (0x61a, 0x61a, 32),
    (0x64b, 0x64b, 27),
    (0x64c, 0x64c, 28),
    (0x64d, 0x64d, 29),
    (0x64e, 0x64e, 30),
    (0x64f, 0x64f, 31),
    (0x650, 0x650, 32),
    (0x651, 0x651, 33),
    (0x652, 0x652, 34),
    (0x653, 0x654, 230),
    (0x655, 0x656, 220),
    (0x657, 0x65b, 230),
    (0x65c, 0x65c, 220),
    (0x65d, 0x65e, 230),
    (0x65f, 0x65f, 220),
    (0x670, 0x670, 35),
    (0x6d6, 0x6dc, 230),
    (0x6df, 0x6e2, 230),
    (0x6e3, 0x6e3, 220),
    (0x6e4, 0x6e4, 230),
    (0x6e7, 0x6e8, 230),
    (0x6ea, 0x6ea, 220),
    (0x6eb, 0x6ec, 230),
    (0x6ed, 0x6ed, 220),
    (0x711, 0x711, 36),
    (0x730, 0x730, 230),
    (0x731, 0x731, 220),
    (0x732, 0x733, 230),
    (0x734, 0x734, 220),
    (0x735, 0x736, 230),
    (0x737, 0x739, 220),
    (0x73a, 0x73a, 230),
    (0x73b, 0x73c, 220),
    (0x73d, 0x73d, 230),
    (0x73e, 0x73e, 220),
    (0x73f, 0x741, 230),
    (0x742, 0x742, 220),
    (0x743, 0x743, 230),
    (0x744, 0x744, 220),
    (0x745, 0x745, 230),
    (0x746, 0x746, 220),
    (0x747, 0x747, 230),
    (0x748, 0x748, 220),
    (0x749, 0x74a, 230),
    (0x7eb, 0x7f1, 230),
    (0x7f2, 0x7f2, 220),
    (0x7f3, 0x7f3, 230),
    (0x7fd, 0x7fd, 220),
    (0x816, 0x819, 230),
    (0x81b, 0x823, 230),
    (0x825, 0x827, 230),
    (0x829, 0x82d, 230),
    (0x859, 0x85b, 220),
    (0x898, 0x898, 230),
    (0x899, 0x89b, 220),
    (0x89c, 0x89f, 230),
    (0x8ca, 0x8ce, 230),
    (0x8cf, 0x8d3, 220),
    (0x8d4, 0x8e1, 230),
    (0x8e3, 0x8e3, 220),
    (0x8e4, 0x8e5, 230),
    (0x8e6, 0x8e6, 220),
    (0x8e7, 0x8e8, 230),
    (0x8e9, 0x8e9, 220),
    (0x8ea, 0x8ec, 230),
    (0x8ed, 0x8ef, 220),
    (0x8f0, 0x8f0, 27),
    (0x8f1, 0x8f1, 28),
    (0x8f2, 0x8f2, 29),
    (0x8f3, 0x8f5, 230),
    (0x8f6, 0x8f6, 220),
    (0x8f7, 0x8f8, 230),
    (0x8f9, 0x8fa, 220),
    (0x8fb, 0x8ff, 230),
    (0x93c, 0x93c, 7),
    (0x94d, 0x94d, 9),
    (0x951, 0x951, 230),
    (0x952, 0x952, 220),
    (0x953, 0x954, 230),
    (0x9bc, 0x9bc, 7),
    (0x9cd, 0x9cd, 9),
    (0x9fe, 0x9fe, 230),
    (0xa3c, 0xa3c, 7),
    (0xa4d, 0xa4d, 9),
    (0xabc, 0xabc, 7),
    (0xacd, 0xacd, 9),
    (0xb3c, 0xb3c, 7),
    (0xb4d, 0xb4d, 9),
    (0xbcd, 0xbcd, 9),
    (0xc3c, 0xc3c, 7),
    (0xc4d, 0xc4d, 9),
    (0xc55, 0xc55, 84),
    (0xc56, 0xc56, 91),
    (0xcbc, 0xcbc, 7),
    (0xccd, 0xccd, 9),
    (0xd3b, 0xd3c, 9),
    (0xd4d, 0xd4d, 9),
    (0xdca, 0xdca, 9),
    (0xe38, 0xe39, 103),
    (0xe3a, 0xe3a, 9),
    (0xe48, 0xe4b, 107),
    (0xeb8, 0xeb9, 118),
    (0xeba, 0xeba, 9),
    (0xec8, 0xecb, 122),
    (0xf18, 0xf19, 220),
    (0xf35, 0xf35, 220),
    (0xf37, 0xf37, 220),
    (0xf39, 0xf39, 216),
    (0xf71, 0xf71, 129),
    (0xf72, 0xf72, 130),
    (0xf74, 0xf74, 132),
    (0xf7a, 0xf7d, 130),
    (0xf80, 0xf80, 130),
    (0xf82, 0xf83, 230),
    (0xf84, 0xf84, 9),
    (0xf86, 0xf87, 230),
    (0xfc6, 0xfc6, 220),
    (0x1037, 0x1037, 7),
    (0x1039, 0x103a, 9),
    (0x108d, 0x108d, 220),
    (0x135d, 0x135f, 230),
    (0x1714, 0x1715, 9),
    (0x1734, 0x1734, 9),
    (0x17d2, 0x17d2, 9),
    (0x17dd, 0x17dd, 230),
    (0x18a9, 0x18a9, 228),
    (0x1939, 0x1939, 222),
    (0x193a, 0x193a, 230),
    (0x193b, 0x193b, 220),
    (0x1a17, 0x1a17, 230),
    (0x1a18, 0x1a18, 220),
    (0x1a60, 0x1a60, 9),
    (0x1a75, 0x1a7c, 230),
    (0x1a7f, 0x1a7f, 220),
    (0x1ab0, 0x1ab4, 230),
    (0x1ab5, 0x1aba, 220),
    (0x1abb, 0x1abc, 230),
    (0x1abd, 0x1abd, 220),
    (0x1abf, 0x1ac0, 220),
    (0x1ac1, 0x1ac2, 230),
    (0x1ac3, 0x1ac4, 220),
    (0x1ac5, 0x1ac9, 230),
    (0x1aca, 0x1aca, 220),
    (0x1acb, 0x1ace, 230),
    (0x1b34, 0x1b34, 7),
    (0x1b44, 0x1b44, 9),
    (0x1b6b, 0x1b6b, 230),
    (0x1b6c, 0x1b6c, 220),
    (0x1b6d, 0x1b73, 230),
    (0x1baa, 0x1bab, 9),
    (0x1be6, 0x1be6, 7),
    (0x1bf2, 0x1bf3, 9),
    (0x1c37, 0x1c37, 7),
    (0x1cd0, 0x1cd2, 230),
    (0x1cd4, 0x1cd4, 1),
    (0x1cd5, 0x1cd9, 220),
    (0x1cda, 0x1cdb, 230),
    (0x1cdc, 0x1cdf, 220),
    (0x1ce0, 0x1ce0, 230),
    (0x1ce2, 0x1ce8, 1),
    (0x1ced, 0x1ced, 220),
    (0x1cf4, 0x1cf4, 230),
    (0x1cf8, 0x1cf9, 230),
    (0x1dc0, 0x1dc1, 230),
    (0x1dc2, 0x1dc2, 220),
    (0x1dc3, 0x1dc9, 230),
    (0x1dca, 0x1dca, 220),
    (0x1dcb, 0x1dcc, 230),
    (0x1dcd, 0x1dcd, 234),
    (0x1dce, 0x1dce, 214),
    (0x1dcf, 0x1dcf, 220),
    (0x1dd0, 0x1dd0, 202),
    (0x1dd1, 0x1df5, 230),
    (0x1df6, 0x1df6, 232),
    (0x1df7, 0x1df8, 228),
    (0x1df9, 0x1df9, 220),
    (0x1dfa, 0x1dfa, 218),
    (0x1dfb, 0x1dfb, 230),
    (0x1dfc, 0x1dfc, 233),
    (0x1dfd, 0x1dfd, 220),
    (0x1dfe, 0x1dfe, 230),
    (0x1dff, 0x1dff, 220),
    (0x20d0, 0x20d1, 230),
    (0x20d2, 0x20d3, 1),
    (0x20d4, 0x20d7, 230),
    (0x20d8, 0x20da, 1),
    (0x20db, 0x20dc, 230),
    (0x20e1, 0x20e1, 230),
    (0x20e5, 0x20e6, 1),
    (0x20e7, 0x20e7, 230),
    (0x20e8, 0x20e8, 220),
    (0x20e9, 0x20e9, 230),
    (0x20ea, 0x20eb, 1),
    (0x20ec, 0x20ef, 220),
    (0x20f0, 0x20f0, 230),
    (0x2cef, 0x2cf1, 230),
    (0x2d7f, 0x2d7f, 9),
    (0x2de0, 0x2dff, 230),
    (0x302a, 0x302a, 218),
    (0x302b, 0x302b, 228),
    (0x302c, 0x302c, 232),
    (0x302d, 0x302d, 222),
    (0x302e, 0x302f, 224),
    (0x3099, 0x309a, 8),
    (0xa66f, 0xa66f, 230),
    (0xa674, 0xa67d, 230),
    (0xa69e, 0xa69f, 230),
    (0xa6f0, 0xa6f1, 230),
    (0xa806, 0xa806, 9),
    (0xa82c, 0xa82c, 9),
    (0xa8c4, 0xa8c4, 9),
    (0xa8e0, 0xa8f1, 230),
    (0xa92b, 0xa92d, 220),
    (0xa953, 0xa953, 9),
    (0xa9b3, 0xa9b3, 7),
    (0xa9c0, 0xa9c0, 9),
    (0xaab0, 0xaab0, 230),
    (0xaab2, 0xaab3, 230),
    (0xaab4, 0xaab4, 220),
    (0xaab7, 0xaab8, 230),
    (0xaabe, 0xaabf, 230),
    (0xaac1, 0xaac1, 230),
    (0xaaf6, 0xaaf6, 9),
    (0xabed, 0xabed, 9),
    (0xfb1e, 0xfb1e, 26),
    (0xfe20, 0xfe26, 230),
    (0xfe27, 0xfe2d, 220),
    (0xfe2e, 0xfe2f, 230),
    (0x101fd, 0x101fd, 220),
    (0x102e0, 0x102e0, 220),
    (0x10376, 0x1037a, 230),
    (0x10a0d, 0x10a0d, 220),
    (0x10a0f, 0x10a0f, 230),
    (0x10a38, 0x10a38, 230),
    (0x10a39, 0x10a39, 1),
    (0x10a3a, 0x10a3a, 220),
    (0x10a3f, 0x10a3f, 9),
    (0x10ae5, 0x10ae5, 230),
    (0x10ae6, 0x10ae6, 220),
    (0x10d24, 0x10d27, 230),
    (0x10eab, 0x10eac, 230),
    (0x10f46, 0x10f47, 220),
    (0x10f48, 0x10f4a, 230),
    (0x10f4b, 0x10f4b, 220),
    (0x10f4c, 0x10f4c, 230),
    (0x10f4d, 0x10f50, 220),
    (0x10f82, 0x10f82, 230),
    (0x10f83, 0x10f83, 220),
    (0x10f84, 0x10f84, 230),
    (0x10f85, 0x10f85, 220),
    (0x11046, 0x11046, 9),
    (0x11070, 0x11070, 9),
    (0x1107f, 0x1107f, 9),
    (0x110b9, 0x110b9, 9),
    (0x110ba, 0x110ba, 7),
    (0x11100, 0x11102, 230),
    (0x11133, 0x11134, 9),
    (0x11173, 0x11173, 7),
    (0x111c0, 0x111c0, 9),
    (0x111ca, 0x111ca, 7),
    (0x11235, 0x11235, 9),
    (0x11236, 0x11236, 7),
    (0x112e9, 0x112e9, 7),
    (0x112ea, 0x112ea, 9),
    (0x1133b, 0x1133c, 7),
    (0x1134d, 0x1134d, 9),
    (0x11366, 0x1136c, 230),
    (0x11370, 0x11374, 230),
    (0x11442, 0x11442, 9),
    (0x11446, 0x11446, 7),
    (0x1145e, 0x1145e, 230),
    (0x114c2, 0x114c2, 9),
    (0x114c3, 0x114c3, 7),
    (0x115bf, 0x115bf, 9),
    (0x115c0, 0x115c0, 7),
    (0x1163f, 0x1163f, 9),
    (0x116b6, 0x116b6, 9),
    (0x116b7, 0x116b7, 7),
    (0x1172b, 0x1172b, 9),
    (0x11839, 0x11839, 9),
    (0x1183a, 0x1183a, 7),
    (0x1193d, 0x1193e, 9),
    (0x11943, 0x11943, 7),
    (0x119e0, 0x119e0, 9),
    (0x11a34, 0x11a34, 9),
    (0x11a47, 0x11a47, 9),
    (0x11a99, 0x11a99, 9),
    (0x11c3f, 0x11c3f, 9),
    (0x11d42, 0x11d42, 7),
    (0x11d44, 0x11d45, 9),
    (0x11d97, 0x11d97, 9),
    (0x16af0, 0x16af4, 1),
    (0x16b30, 0x16b36, 230),
    (0x16ff0, 0x16ff1, 6),
    (0x1bc9e, 0x1bc9e, 1),
    (0x1d165, 0x1d166, 216),
    (0x1d167, 0x1d169, 1),
    (0x1d16d, 0x1d16d, 226),
    (0x1d16e, 0x1d172, 216),
    (0x1d17b, 0x1d182, 220),
    (0x1d185, 0x1d189, 230),
    (0x1d18a, 0x1d18b, 220),
    (0x1d1aa, 0x1d1ad, 230),
    (0x1d242, 0x1d244, 230),
    (0x1e000, 0x1e006, 230),
    (0x1e008, 0x1e018, 230),
    (0x1e01b, 0x1e021, 230),
    (0x1e023, 0x1e024, 230),
    (0x1e026, 0x1e02a, 230),
    (0x1e130, 0x1e136, 230),
    (0x1e2ae, 0x1e2ae, 230),
    (0x1e2ec, 0x1e2ef, 230),
    (0x1e8d0, 0x1e8d6, 220),
    (0x1e944, 0x1e949, 230),
    (0x1e94a, 0x1e94a, 7),
];

// Generator (run with ftfy installed):
// # Generates src/tokenizer/ftfy_data.rs from ftfy 6.3.1 and Python's unicodedata.
// import html.entities, unicodedata, sys, re
// import ftfy
// from ftfy import badness, chardata
// from ftfy.bad_codecs import sloppy  # registers sloppy codecs
//
// def esc_char(c, in_class=False):
//     o = ord(c)
//     if c.isalnum() and o < 128:
//         return c
//     return "\\x{%x}" % o
//
// def verbose_to_rust(pat):
//     """Python re.VERBOSE pattern -> plain Rust regex with every non-alnum char escaped."""
//     out = []
//     i = 0
//     in_class = False
//     while i < len(pat):
//         c = pat[i]
//         if not in_class:
//             if c in " \t\n\r\f\v":
//                 i += 1; continue
//             if c == "#":
//                 while i < len(pat) and pat[i] != "\n":
//                     i += 1
//                 continue
//             if c == "\\":
//                 # Python's \s and \w (str.isspace, str.isalnum or _), not Rust's
//                 out.append({"\\s": r"[\s\x{1c}-\x{1f}]", "\\w": r"[\p{L}\p{N}_]"}.get(pat[i:i+2], pat[i:i+2])); i += 2; continue
//             if c == "[":
//                 in_class = True; out.append("[")
//                 if pat[i+1] == "^":
//                     out.append("^"); i += 1
//                 i += 1; continue
//             if c in "|()?*+{}^$.":
//                 out.append(c); i += 1; continue
//             out.append(esc_char(c)); i += 1; continue
//         else:
//             if c == "]":
//                 in_class = False; out.append("]"); i += 1; continue
//             if c == "\\":
//                 out.append(pat[i:i+2]); i += 2; continue
//             if c == "-":
//                 out.append("-"); i += 1; continue
//             out.append(esc_char(c)); i += 1; continue
//     return "".join(out)
//
// def rust_str(s):
//     r = []
//     for c in s:
//         o = ord(c)
//         if c == '"': r.append('\\"')
//         elif c == '\\': r.append('\\\\')
//         elif 0x20 <= o < 0x7f: r.append(c)
//         else: r.append("\\u{%x}" % o)
//     return '"' + "".join(r) + '"'
//
// out = []
// w = out.append
// w("//! Data tables for the ftfy port, generated from ftfy %s and Python %s's unicodedata (Unicode %s)" % (ftfy.__version__, sys.version.split()[0], unicodedata.unidata_version))
// w("//! by the script in this file's trailing comment (`python gen.py > ftfy_data.rs && rustfmt ftfy_data.rs`). Do not edit by hand.")
// w("")
// badness_pat = verbose_to_rust(badness.BADNESS_RE.pattern)
// w("/// `ftfy.badness.BADNESS_RE` (whitespace and comments of the verbose pattern removed).")
// w("pub const BADNESS_RE: &str = r#\"%s\"#;" % badness_pat)
// det = chardata.UTF8_DETECTOR_RE.pattern
// # strip the lookbehind; it is checked by hand
// lb = re.search(r"\(\?<!\s*\[([^\]]*)\]\)", det)
// body = det[:lb.start()] + det[lb.end():]
// w("/// `ftfy.chardata.UTF8_DETECTOR_RE` without its lookbehind (checked in code with `UTF8_CONTINUATION_STRICT`).")
// w("pub const UTF8_DETECTOR_RE: &str = r#\"%s\"#;" % verbose_to_rust(body))
// w("/// The lookbehind class of `UTF8_DETECTOR_RE`.")
// w("pub const UTF8_CONTINUATION_STRICT: &str = r#\"[%s]\"#;" % verbose_to_rust("[" + lb.group(1) + "]")[1:-1])
//
// # charmap encodings: chars for bytes 0x80..0xFF and for 0x1A
// w("")
// w("/// `(name, chars of bytes 0x80..=0xFF, char of byte 0x1A)` for `ftfy.chardata.CHARMAP_ENCODINGS`, in order.")
// w("pub const CHARMAP_ENCODINGS: [(&str, &str, char); %d] = [" % len(chardata.CHARMAP_ENCODINGS))
// for enc in chardata.CHARMAP_ENCODINGS:
//     hi = bytes(range(0x80, 0x100)).decode(enc)
//     assert len(hi) == 128
//     lo = bytes(range(0, 0x80)).decode(enc)
//     assert lo[:0x1a] == "".join(map(chr, range(0x1a))) and lo[0x1b:] == "".join(map(chr, range(0x1b, 0x80))), enc
//     sub = bytes([0x1a]).decode(enc)
//     assert len(set(hi + sub)) == 129 and not set(hi + sub) & set(map(chr, range(0x7f))) - {sub}, enc
//     w("    (%s, %s, '%s')," % (rust_str(enc), rust_str(hi), "\\u{%x}" % ord(sub)))
// w("];")
//
// # HTML entities: the complete HTML5 table of html.unescape
// w("")
// h5 = html.entities.html5
// items = ["%s=%s" % (n, ",".join("%x" % ord(c) for c in h5[n])) for n in sorted(h5)]
// assert all(" " not in n and "=" not in n for n in h5)
// w("/// `html.entities.html5` (what `html.unescape` knows), space separated `name=hex,hex`; names ending")
// w("/// in `;` need it, the others are the legacy names that may omit it.")
// w("pub const HTML5_ENTITIES: &str = \"\\")
// cur = ""
// for it in items:
//     if len(cur) + len(it) + 1 > 100:
//         w("    " + cur + "\\"); cur = ""
//     cur += it + " "
// w("    " + cur + "\\")
// w("\";")
//
// # width map
// w("")
// wm = chardata.WIDTH_MAP
// w("/// `ftfy.chardata.WIDTH_MAP`: fullwidth/halfwidth forms -> NFKC.")
// w("pub const WIDTH_MAP: [(char, &str); %d] = [" % len(wm))
// for k in sorted(wm):
//     w("    ('\\u{%x}', %s)," % (k, rust_str(wm[k])))
// w("];")
//
// # NFC data
// w("")
// decomp = []
// ccc = []
// for cp in range(0x110000):
//     c = chr(cp)
//     if 0xAC00 <= cp <= 0xD7A3:
//         continue
//     d = unicodedata.decomposition(c)
//     if d and not d.startswith("<"):
//         parts = [int(x, 16) for x in d.split()]
//         assert len(parts) in (1, 2)
//         composable = len(parts) == 2 and unicodedata.normalize("NFC", c) == c and unicodedata.combining(chr(parts[0])) == 0
//         decomp.append((cp, parts[0], parts[1] if len(parts) == 2 else 0, composable))
//     k = unicodedata.combining(c)
//     if k:
//         ccc.append((cp, k))
// w("/// Canonical decompositions (Hangul is algorithmic), space separated: `char=first+second` for pairs that")
// w("/// recompose, `char=first+second!` for pairs that do not (exclusions, non-starters), `char=first` for")
// w("/// singletons; all hex.")
// items = []
// for cp, a, b, comp in decomp:
//     if b == 0:
//         items.append("%x=%x" % (cp, a))
//     else:
//         items.append("%x=%x+%x%s" % (cp, a, b, "" if comp else "!"))
// lines = []
// cur = ""
// for it in items:
//     if len(cur) + len(it) + 1 > 100:
//         lines.append(cur); cur = ""
//     cur += it + " "
// lines.append(cur)
// w("pub const CANONICAL_DECOMPOSITIONS: &str = \"\\")
// for l in lines:
//     w("    " + l + "\\")
// w("\";")
// # ccc ranges
// ranges = []
// for cp, k in ccc:
//     if ranges and ranges[-1][1] == cp - 1 and ranges[-1][2] == k:
//         ranges[-1][1] = cp
//     else:
//         ranges.append([cp, cp, k])
// w("/// Non-zero canonical combining classes as `(first, last, class)` ranges.")
// w("pub const COMBINING_CLASSES: [(u32, u32, u8); %d] = [" % len(ranges))
// line = []
// for a, b, k in ranges:
//     line.append("(0x%x,0x%x,%d)" % (a, b, k))
//     if len(line) == 6:
//         w("    " + ", ".join(line) + ","); line = []
// if line: w("    " + ", ".join(line) + ",")
// w("];")
// w("")
// w("// Generator (run with ftfy installed):")
// for l in open(__file__).read().splitlines():
//     w("// " + l if l else "//")
// print("\n".join(out))
