/**
 * Phone number → IANA time zone, for quiet hours and send-time scheduling.
 *
 * libphonenumber-js ships no time zone data, so this is a compact hand-kept
 * table: one main zone per country, plus number-prefix refinements where a
 * country spans zones and its numbers are geographic (NANP area codes,
 * Australian landlines, Brazilian DDD, a few Mexican area codes). Mobile
 * ranges that are nationwide (AU 04, RU 9xx, ID 08…) fall back to the main zone.
 */

/** Country → zone: the only zone for single-zone countries, the most populous one otherwise. */
const COUNTRY_ZONES_DATA =
  'AC:Atlantic/St_Helena AD:Europe/Andorra AE:Asia/Dubai AF:Asia/Kabul AG:America/Antigua AI:America/Anguilla ' +
  'AL:Europe/Tirane AM:Asia/Yerevan AO:Africa/Luanda AR:America/Argentina/Buenos_Aires AS:Pacific/Pago_Pago ' +
  'AT:Europe/Vienna AU:Australia/Sydney AW:America/Aruba AX:Europe/Mariehamn AZ:Asia/Baku BA:Europe/Sarajevo ' +
  'BB:America/Barbados BD:Asia/Dhaka BE:Europe/Brussels BF:Africa/Ouagadougou BG:Europe/Sofia BH:Asia/Bahrain ' +
  'BI:Africa/Bujumbura BJ:Africa/Porto-Novo BL:America/St_Barthelemy BM:Atlantic/Bermuda BN:Asia/Brunei ' +
  'BO:America/La_Paz BQ:America/Kralendijk BR:America/Sao_Paulo BS:America/Nassau BT:Asia/Thimphu ' +
  'BW:Africa/Gaborone BY:Europe/Minsk BZ:America/Belize CA:America/Toronto CC:Indian/Cocos CD:Africa/Kinshasa ' +
  'CF:Africa/Bangui CG:Africa/Brazzaville CH:Europe/Zurich CI:Africa/Abidjan CK:Pacific/Rarotonga ' +
  'CL:America/Santiago CM:Africa/Douala CN:Asia/Shanghai CO:America/Bogota CR:America/Costa_Rica ' +
  'CU:America/Havana CV:Atlantic/Cape_Verde CW:America/Curacao CX:Indian/Christmas CY:Asia/Nicosia ' +
  'CZ:Europe/Prague DE:Europe/Berlin DJ:Africa/Djibouti DK:Europe/Copenhagen DM:America/Dominica ' +
  'DO:America/Santo_Domingo DZ:Africa/Algiers EC:America/Guayaquil EE:Europe/Tallinn EG:Africa/Cairo ' +
  'EH:Africa/El_Aaiun ER:Africa/Asmara ES:Europe/Madrid ET:Africa/Addis_Ababa FI:Europe/Helsinki FJ:Pacific/Fiji ' +
  'FK:Atlantic/Stanley FM:Pacific/Pohnpei FO:Atlantic/Faroe FR:Europe/Paris GA:Africa/Libreville ' +
  'GB:Europe/London GD:America/Grenada GE:Asia/Tbilisi GF:America/Cayenne GG:Europe/Guernsey GH:Africa/Accra ' +
  'GI:Europe/Gibraltar GL:America/Nuuk GM:Africa/Banjul GN:Africa/Conakry GP:America/Guadeloupe ' +
  'GQ:Africa/Malabo GR:Europe/Athens GT:America/Guatemala GU:Pacific/Guam GW:Africa/Bissau GY:America/Guyana ' +
  'HK:Asia/Hong_Kong HN:America/Tegucigalpa HR:Europe/Zagreb HT:America/Port-au-Prince HU:Europe/Budapest ' +
  'ID:Asia/Jakarta IE:Europe/Dublin IL:Asia/Jerusalem IM:Europe/Isle_of_Man IN:Asia/Kolkata IO:Indian/Chagos ' +
  'IQ:Asia/Baghdad IR:Asia/Tehran IS:Atlantic/Reykjavik IT:Europe/Rome JE:Europe/Jersey JM:America/Jamaica ' +
  'JO:Asia/Amman JP:Asia/Tokyo KE:Africa/Nairobi KG:Asia/Bishkek KH:Asia/Phnom_Penh KI:Pacific/Tarawa ' +
  'KM:Indian/Comoro KN:America/St_Kitts KP:Asia/Pyongyang KR:Asia/Seoul KW:Asia/Kuwait KY:America/Cayman ' +
  'KZ:Asia/Almaty LA:Asia/Vientiane LB:Asia/Beirut LC:America/St_Lucia LI:Europe/Vaduz LK:Asia/Colombo ' +
  'LR:Africa/Monrovia LS:Africa/Maseru LT:Europe/Vilnius LU:Europe/Luxembourg LV:Europe/Riga LY:Africa/Tripoli ' +
  'MA:Africa/Casablanca MC:Europe/Monaco MD:Europe/Chisinau ME:Europe/Podgorica MF:America/Marigot ' +
  'MG:Indian/Antananarivo MH:Pacific/Majuro MK:Europe/Skopje ML:Africa/Bamako MM:Asia/Yangon ' +
  'MN:Asia/Ulaanbaatar MO:Asia/Macau MP:Pacific/Saipan MQ:America/Martinique MR:Africa/Nouakchott ' +
  'MS:America/Montserrat MT:Europe/Malta MU:Indian/Mauritius MV:Indian/Maldives MW:Africa/Blantyre ' +
  'MX:America/Mexico_City MY:Asia/Kuala_Lumpur MZ:Africa/Maputo NA:Africa/Windhoek NC:Pacific/Noumea ' +
  'NE:Africa/Niamey NF:Pacific/Norfolk NG:Africa/Lagos NI:America/Managua NL:Europe/Amsterdam NO:Europe/Oslo ' +
  'NP:Asia/Kathmandu NR:Pacific/Nauru NU:Pacific/Niue NZ:Pacific/Auckland OM:Asia/Muscat PA:America/Panama ' +
  'PE:America/Lima PF:Pacific/Tahiti PG:Pacific/Port_Moresby PH:Asia/Manila PK:Asia/Karachi PL:Europe/Warsaw ' +
  'PM:America/Miquelon PN:Pacific/Pitcairn PR:America/Puerto_Rico PS:Asia/Hebron PT:Europe/Lisbon ' +
  'PW:Pacific/Palau PY:America/Asuncion QA:Asia/Qatar RE:Indian/Reunion RO:Europe/Bucharest ' +
  'RS:Europe/Belgrade RU:Europe/Moscow RW:Africa/Kigali SA:Asia/Riyadh SB:Pacific/Guadalcanal SC:Indian/Mahe ' +
  'SD:Africa/Khartoum SE:Europe/Stockholm SG:Asia/Singapore SH:Atlantic/St_Helena SI:Europe/Ljubljana ' +
  'SJ:Arctic/Longyearbyen SK:Europe/Bratislava SL:Africa/Freetown SM:Europe/San_Marino SN:Africa/Dakar ' +
  'SO:Africa/Mogadishu SR:America/Paramaribo SS:Africa/Juba ST:Africa/Sao_Tome SV:America/El_Salvador ' +
  'SX:America/Lower_Princes SY:Asia/Damascus SZ:Africa/Mbabane TA:Atlantic/St_Helena TC:America/Grand_Turk ' +
  'TD:Africa/Ndjamena TG:Africa/Lome TH:Asia/Bangkok TJ:Asia/Dushanbe TK:Pacific/Fakaofo TL:Asia/Dili ' +
  'TM:Asia/Ashgabat TN:Africa/Tunis TO:Pacific/Tongatapu TR:Europe/Istanbul TT:America/Port_of_Spain ' +
  'TV:Pacific/Funafuti TW:Asia/Taipei TZ:Africa/Dar_es_Salaam UA:Europe/Kyiv UG:Africa/Kampala ' +
  'US:America/New_York UY:America/Montevideo UZ:Asia/Tashkent VA:Europe/Vatican VC:America/St_Vincent ' +
  'VE:America/Caracas VG:America/Tortola VI:America/St_Thomas VN:Asia/Ho_Chi_Minh VU:Pacific/Efate ' +
  'WF:Pacific/Wallis WS:Pacific/Apia XK:Europe/Belgrade YE:Asia/Aden YT:Indian/Mayotte ZA:Africa/Johannesburg ' +
  'ZM:Africa/Lusaka ZW:Africa/Harare';

/**
 * NANP (US + Canada) geographic area codes by zone. Codes whose territory is
 * split between zones with no clear majority (FL 850/448, IN 812/930, CA 867)
 * are deliberately absent so they fall back to the country's main zone; codes
 * with a small minority in another zone (e.g. ID 208, TX 432) use the majority zone.
 */
const NANP_ZONES_DATA: Record<string, string> = {
  'America/New_York':
    // CT DE DC FL GA KY(E) ME MD MA NH NJ NY NC OH PA RI SC TN(E) VT VA WV
    '203 475 860 959 302 202 771 239 305 321 324 352 386 407 561 645 656 689 727 728 754 772 786 813 863 904 941 954 ' +
    '229 404 470 478 678 706 762 770 912 943 502 606 859 207 227 240 301 410 443 667 339 351 413 508 617 774 781 857 978 ' +
    '603 201 551 609 640 732 848 856 862 908 973 212 315 329 332 347 363 516 518 585 607 624 631 646 680 716 718 838 845 914 917 929 934 ' +
    '252 336 472 704 743 828 910 919 980 984 216 220 234 283 326 330 380 419 436 440 513 567 614 740 937 ' +
    '215 223 267 272 412 445 484 570 582 610 717 724 814 835 878 401 803 839 843 854 864 423 865 802 ' +
    '276 434 540 571 703 757 804 826 948 304 681',
  'America/Detroit': '231 248 269 313 517 586 616 679 734 810 906 947 989',
  'America/Indiana/Indianapolis': '260 317 463 574 765',
  'America/Chicago':
    // AL AR IL IN(NW) IA KS KY(W) LA MN MS MO NE ND OK SD TN(C) TX WI
    '205 251 256 334 659 938 327 479 501 870 217 224 309 312 331 447 464 618 630 708 730 773 779 815 847 861 872 219 ' +
    '319 515 563 641 712 316 620 785 913 270 364 225 318 337 504 985 218 320 507 612 651 763 952 228 601 662 769 ' +
    '314 417 557 573 636 660 816 975 308 402 531 701 405 539 572 580 918 605 615 629 731 901 931 ' +
    '210 214 254 281 325 346 361 409 430 432 469 512 682 713 726 737 806 817 830 832 903 936 940 945 956 972 979 ' +
    '262 274 353 414 534 608 715 920',
  'America/Denver': '303 719 720 970 983 406 505 575 385 435 801 307 915',
  'America/Boise': '208 986',
  'America/Phoenix': '480 520 602 623 928',
  'America/Los_Angeles':
    '209 213 279 310 323 341 350 357 369 408 415 424 442 510 530 559 562 619 626 628 650 657 661 669 707 714 747 760 ' +
    '805 818 820 831 840 858 909 916 925 949 951 702 725 775 458 503 541 971 206 253 360 425 509 564',
  'America/Anchorage': '907',
  'Pacific/Honolulu': '808',
  // Canada
  'America/St_Johns': '709 879',
  'America/Halifax': '782 902',
  'America/Moncton': '428 506',
  'America/Toronto': '263 354 367 418 438 450 468 514 579 581 819 873 ' + '226 249 289 343 365 382 416 437 519 548 613 647 683 705 742 753 807 905 942',
  'America/Winnipeg': '204 431 584',
  'America/Regina': '306 474 639',
  'America/Edmonton': '368 403 587 780 825',
  'America/Vancouver': '236 250 257 604 672 778',
};

/** Brazilian DDD codes outside Brasília time (the rest of Brazil shares America/Sao_Paulo's offset). */
const BR_DDD_ZONES: Record<string, string> = {
  '65': 'America/Cuiaba',
  '66': 'America/Cuiaba',
  '67': 'America/Campo_Grande',
  '68': 'America/Rio_Branco',
  '69': 'America/Porto_Velho',
  '92': 'America/Manaus',
  '97': 'America/Manaus',
  '95': 'America/Boa_Vista',
};

/** Mexican area codes outside central time; Mexican mobiles keep their area code, so this covers them too. */
const MX_AREA_ZONES: Record<string, string> = {
  '664': 'America/Tijuana',
  '665': 'America/Tijuana',
  '686': 'America/Tijuana',
  '646': 'America/Tijuana',
  '661': 'America/Tijuana',
  '662': 'America/Hermosillo',
  '631': 'America/Hermosillo',
  '644': 'America/Hermosillo',
  '612': 'America/Mazatlan',
  '624': 'America/Mazatlan',
  '669': 'America/Mazatlan',
  '667': 'America/Mazatlan',
  '668': 'America/Mazatlan',
  '998': 'America/Cancun',
  '984': 'America/Cancun',
  '983': 'America/Cancun',
};

/** Australian geographic (landline) prefixes after the trunk 0; 08 spans WA/SA/NT so it is left out. */
const AU_PREFIX_ZONES: Record<string, string> = {
  '2': 'Australia/Sydney',
  '3': 'Australia/Melbourne',
  '7': 'Australia/Brisbane',
};

const countryZones = new Map<string, string>(
  COUNTRY_ZONES_DATA.split(' ').map((pair) => {
    const i = pair.indexOf(':');
    return [pair.slice(0, i), pair.slice(i + 1)] as const;
  }),
);

const nanpZones = new Map<string, string>();
for (const [zone, codes] of Object.entries(NANP_ZONES_DATA)) {
  for (const code of codes.split(' ')) {
    // A code listed under two zones is a data-entry slip; fail at load rather than pick one silently.
    const existing = nanpZones.get(code);
    if (existing) throw new Error(`NANP area code ${code} listed for both ${existing} and ${zone}`);
    nanpZones.set(code, zone);
  }
}

export function countryTimezone(country: string): string | undefined {
  return countryZones.get(country.toUpperCase());
}

/** Zone for the NANP area code, when the area code is in the table. */
export function nanpAreaCodeTimezone(areaCode: string): string | undefined {
  return nanpZones.get(areaCode);
}

/**
 * Zone for a parsed number: a prefix-specific zone where the numbering plan is
 * geographic and the table knows the prefix, else the country's main zone.
 * nationalNumber is the national significant number (no trunk prefix).
 */
export function numberTimezone(country: string | undefined, nationalNumber: string): string | undefined {
  if (!country) return undefined;
  const c = country.toUpperCase();
  let zone: string | undefined;
  if (c === 'US' || c === 'CA') zone = nanpZones.get(nationalNumber.slice(0, 3));
  else if (c === 'BR') zone = BR_DDD_ZONES[nationalNumber.slice(0, 2)];
  else if (c === 'MX') zone = MX_AREA_ZONES[nationalNumber.slice(0, 3)];
  else if (c === 'AU') zone = AU_PREFIX_ZONES[nationalNumber.slice(0, 1)];
  return zone ?? countryTimezone(c);
}

/** Every zone the tables can return, so tests can check the runtime knows them all. */
export function allKnownTimezones(): string[] {
  return [
    ...new Set([
      ...countryZones.values(),
      ...nanpZones.values(),
      ...Object.values(BR_DDD_ZONES),
      ...Object.values(MX_AREA_ZONES),
      ...Object.values(AU_PREFIX_ZONES),
    ]),
  ];
}
