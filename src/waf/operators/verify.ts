// Checksums behind @verifyCC, @verifySSN, @verifyCPF and @verifySVNR. Each
// takes the text a regex matched and looks only at its digits.

function digitsOf(text: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x30 && c <= 0x39) out.push(c - 0x30);
  }
  return out;
}

/** Luhn checksum (credit card numbers). */
export function luhnValid(text: string): boolean {
  const d = digitsOf(text);
  if (d.length === 0) return false;
  let sum = 0;
  for (let k = 0; k < d.length; k++) {
    let v = d[d.length - 1 - k]!;
    if (k % 2 === 1) {
      v *= 2;
      if (v > 9) v -= 9;
    }
    sum += v;
  }
  return sum % 10 === 0;
}

function allSame(d: readonly number[]): boolean {
  return d.every((v) => v === d[0]);
}

/** US social security number: 9 digits, no zero field, area not 666 or >= 740, no well-known fakes. */
export function ssnValid(text: string): boolean {
  const d = digitsOf(text);
  if (d.length !== 9 || allSame(d)) return false;
  const joined = d.join('');
  if (joined === '123456789' || joined === '987654321') return false;
  const area = Number(joined.slice(0, 3));
  const group = Number(joined.slice(3, 5));
  const serial = Number(joined.slice(5));
  return area !== 0 && area !== 666 && area < 740 && group !== 0 && serial !== 0;
}

/** Brazilian CPF: 11 digits, the last two are mod-11 check digits. */
export function cpfValid(text: string): boolean {
  const d = digitsOf(text);
  if (d.length !== 11 || allSame(d)) return false;
  const check = (count: number): number => {
    let sum = 0;
    for (let k = 0; k < count; k++) sum += d[k]! * (count + 1 - k);
    const r = (sum * 10) % 11;
    return r === 10 ? 0 : r;
  };
  return check(9) === d[9] && check(10) === d[10];
}

/** Austrian social insurance number: serial(3) check(1) birth date DDMMYY; weighted mod 11. */
export function svnrValid(text: string): boolean {
  const d = digitsOf(text);
  if (d.length !== 10) return false;
  const weights = [3, 7, 9, 0, 5, 8, 4, 2, 1, 6];
  let sum = 0;
  for (let k = 0; k < 10; k++) sum += d[k]! * weights[k]!;
  const check = sum % 11;
  if (check === 10 || check !== d[3]) return false;
  const day = Number(`${d[4]}${d[5]}`);
  const month = Number(`${d[6]}${d[7]}`);
  // Unknown birth days/months are encoded above the calendar range; accept 1..31 / 1..12 only otherwise.
  return day >= 1 && day <= 31 && month >= 1 && month <= 12;
}
