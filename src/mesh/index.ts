// The overlay: ACL policy and stateful filter (more to come: routing, multi-hop, discovery).
export * from './acl/index.js';
