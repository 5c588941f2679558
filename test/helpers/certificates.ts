// Test certificates made with openssl in a folder: a CA, and server or client certificates
// it signs (for 127.0.0.1 and localhost), as PEM files. EC P-256 keys keep it fast.
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";

export interface PemPair {
  cert: string;
  key: string;
}

function openssl(args: string[]): void {
  execFileSync("openssl", args, { stdio: "ignore" });
}

const ecKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

/** A self-signed CA certificate named `name`. */
export function makeCa(dir: string, name = "test-ca"): PemPair {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  openssl([
    "req",
    "-x509",
    ...ecKey,
    "-days",
    "1",
    "-subj",
    `/CN=${name}`,
    "-keyout",
    key,
    "-out",
    cert,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  return { cert, key };
}

/** A certificate for `name` signed by `ca`: server (127.0.0.1, localhost) or client use. */
export function makeSigned(dir: string, ca: PemPair, name: string, use: "server" | "client") {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const ext = join(dir, `${name}.ext`);
  openssl(["req", "-new", ...ecKey, "-subj", `/CN=${name}`, "-keyout", key, "-out", csr]);
  writeFileSync(
    ext,
    use === "server"
      ? "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
      : "extendedKeyUsage=clientAuth\n",
  );
  openssl([
    "x509",
    "-req",
    "-in",
    csr,
    "-CA",
    ca.cert,
    "-CAkey",
    ca.key,
    "-CAcreateserial",
    "-days",
    "1",
    "-extfile",
    ext,
    "-out",
    cert,
  ]);
  return { cert, key };
}
