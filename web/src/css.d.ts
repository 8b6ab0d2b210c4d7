// esbuild bundles imported CSS into the entry's .css output; TypeScript only needs to know the import is valid.
declare module "*.css";
