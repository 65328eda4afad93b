#!/bin/sh
# Regenerates the key fixtures in testdata/keys with ssh-keygen and openssl.
# Run from testdata/: sh make-keys.sh. Test keys only; never use them for anything real.
set -eu
cd keys
rm -f ./*
P=asymjwt-test-passphrase

# OpenSSH private key format, unencrypted and encrypted (bcrypt KDF).
ssh-keygen -q -t ed25519 -N '' -C openssh-ed25519 -f openssh_ed25519
ssh-keygen -q -t ecdsa -b 256 -N '' -C openssh-p256 -f openssh_p256
ssh-keygen -q -t ecdsa -b 384 -N '' -C openssh-p384 -f openssh_p384
ssh-keygen -q -t ecdsa -b 521 -N '' -C openssh-p521 -f openssh_p521
ssh-keygen -q -t rsa -b 2048 -N '' -C openssh-rsa2048 -f openssh_rsa2048
ssh-keygen -q -t ed25519 -N "$P" -C openssh-ed25519-enc -f openssh_ed25519_enc
ssh-keygen -q -t rsa -b 2048 -N "$P" -C openssh-rsa-enc -f openssh_rsa_enc

# PKCS#1 RSA and SEC1 EC ("traditional" PEM).
openssl genrsa -traditional -out pkcs1_rsa2048.pem 2048
openssl ecparam -name prime256v1 -genkey -noout -out sec1_p256.pem
openssl ecparam -name secp384r1 -genkey -noout -out sec1_p384.pem
openssl ecparam -name secp521r1 -genkey -noout -out sec1_p521.pem

# PKCS#8 "PRIVATE KEY".
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out pkcs8_rsa3072.pem
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out pkcs8_p256.pem
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-521 -out pkcs8_p521.pem
openssl genpkey -algorithm ed25519 -out pkcs8_ed25519.pem

# PKCS#8 "ENCRYPTED PRIVATE KEY": PBES2, PBKDF2-HMAC-SHA256 and AES-256-CBC
# (openssl's default), AES-128 with HMAC-SHA1 as older tools write it, scrypt.
openssl genpkey -algorithm ed25519 -aes256 -pass "pass:$P" -out pkcs8enc_ed25519_aes256.pem
openssl pkcs8 -topk8 -v2 aes-128-cbc -v2prf hmacWithSHA1 -in pkcs1_rsa2048.pem -passout "pass:$P" -out pkcs8enc_rsa_aes128_sha1.pem
openssl pkcs8 -topk8 -v2 aes-256-cbc -v2prf hmacWithSHA512 -in sec1_p384.pem -passout "pass:$P" -out pkcs8enc_p384_sha512.pem
openssl pkcs8 -topk8 -scrypt -in pkcs8_p256.pem -passout "pass:$P" -out pkcs8enc_p256_scrypt.pem

# Legacy encrypted PEM (Proc-Type: 4,ENCRYPTED / DEK-Info), as the original
# library's own encrypted test key is.
openssl rsa -traditional -aes256 -in pkcs1_rsa2048.pem -passout "pass:$P" -out legacy_rsa_aes256.pem
openssl rsa -traditional -des3 -in pkcs1_rsa2048.pem -passout "pass:$P" -out legacy_rsa_des3.pem
openssl ec -aes128 -in sec1_p256.pem -passout "pass:$P" -out legacy_p256_aes128.pem

# Public halves, as a server stores them.
for k in openssh_ed25519 openssh_p256 openssh_p384 openssh_p521 openssh_rsa2048 openssh_ed25519_enc openssh_rsa_enc; do
  mv "$k.pub" "$k.pub.ssh"
done
for k in pkcs1_rsa2048 sec1_p256 sec1_p384 sec1_p521 pkcs8_rsa3072 pkcs8_p256 pkcs8_p521 pkcs8_ed25519; do
  openssl pkey -in "$k.pem" -pubout -out "$k.pub.pem"
done

# Keys that must be refused.
openssl genrsa -traditional -out bad_rsa1024.pem 1024
openssl ecparam -name secp256k1 -genkey -noout -out bad_secp256k1.pem
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:secp256k1 -out bad_pkcs8_secp256k1.pem
openssl genpkey -algorithm X25519 -out bad_x25519.pem
openssl dsaparam -genkey -noout -out bad_dsa.pem 2048
openssl pkey -in pkcs1_rsa2048.pem -pubout -out bad_public_only.pem
printf 'this is not a key\n' > bad_garbage.txt
: > bad_empty.txt
