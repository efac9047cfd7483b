/**
 * Generates the PDF fixtures in test/fixtures/pdf/ with pdf-lib:
 *   npx tsx test/helpers/make-pdf-fixtures.ts
 * The files are committed; the tests read them and check the text written here.
 * encrypted.pdf is slides.pdf with a password (pdf-lib cannot encrypt), made with qpdf:
 *   qpdf --encrypt secret secret 256 -- test/fixtures/pdf/slides.pdf test/fixtures/pdf/encrypted.pdf
 */
import { writeFileSync } from 'node:fs';
import { PDFDocument, StandardFonts } from 'pdf-lib';

export const SLIDES_TEXT = ['Conveyor keeps every job', 'Leases fence stale workers', 'Webhooks are never lost'];

async function slides(): Promise<Uint8Array> {
  const doc = await PDFDocument.create();
  doc.setTitle('Queue Design Slides');
  doc.setAuthor('Ada Lovelace');
  doc.setCreationDate(new Date('2026-01-02T03:04:05Z'));
  const font = await doc.embedFont(StandardFonts.Helvetica);
  for (const line of SLIDES_TEXT) {
    const page = doc.addPage([480, 270]);
    page.drawText(line, { x: 40, y: 180, size: 20, font });
  }
  return doc.save();
}

if (process.argv[1]?.endsWith('make-pdf-fixtures.ts')) {
  writeFileSync('test/fixtures/pdf/slides.pdf', await slides());
  const good = await slides();
  // Cut in the middle: a header, then garbage: what a broken upload looks like.
  writeFileSync(
    'test/fixtures/pdf/corrupt.pdf',
    Buffer.concat([Buffer.from(good.subarray(0, 400)), Buffer.from('\u0000garbage'.repeat(50))]),
  );
  writeFileSync('test/fixtures/pdf/not-a-pdf.pdf', 'This is plain text pretending to be a PDF.\n');
}
