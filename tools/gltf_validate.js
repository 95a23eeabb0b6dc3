// Validate a .glb/.gltf with the Khronos glTF validator (npm package gltf-validator) and print its JSON report.
// usage: node tools/gltf_validate.js NODE_PREFIX FILE   (NODE_PREFIX holds node_modules/gltf-validator)
const fs = require("fs");
const path = require("path");
const validator = require(path.resolve(process.argv[2], "node_modules", "gltf-validator"));
const data = new Uint8Array(fs.readFileSync(process.argv[3]));
validator
  .validateBytes(data)
  .then((report) => console.log(JSON.stringify(report, null, 1)))
  .catch((error) => {
    console.error(String(error));
    process.exit(2);
  });
